"""The relaxation network: every layer engine, the on-chip data set and the step controller.

A relaxation step starts every layer engine at once; each reads only *current* registers and
writes only *next* registers, and the step ends with one commit of all of them: the synchronous,
atomic update of DESIGN.md section 1. Commands (:class:`~.regmap.Op`) arrive on a stream; an
access bus reads and writes registers, weights, gradients, the data set and the status
counters while the controller is idle (:mod:`.regmap`).

Train mode pipelines an epoch: in step ``t`` of a batch (``t = 1 .. B + 2L``), layer ``l``'s
forward pass works on sample ``t - l``, its sensitivity (and gradient) on sample
``t - 2 - 2L + l``; gradients accumulate with the weights frozen, then the update is applied.

With ``NetConfig.engine == "serial"`` the layer engines are one :class:`~.serial.SerialEngine`
that runs each step's layers in turn (writing in place, in an order that reads only current
values); the controller, the data set, the counters and the access bus are the same.
"""

from amaranth import Module, Signal, Mux, Array, Const, signed
from amaranth.lib import wiring, data, stream
from amaranth.lib.wiring import In, Out

from .layer import (LayerEngine, SOURCE_LATENCY, MAX_READBACK_LATENCY, REGISTER_READ_LATENCY,
                    readback_latency, skew_depth)
from .serial import SerialEngine, READBACK_LATENCY as SERIAL_READBACK_LATENCY
from .arith import const_mul, delay
from .datamem import DataMemory
from .pe import bits
from .regmap import Space, Status, Op, col_bits
from .status import StatusCounters

__all__ = ["RelaxationNetwork", "command_layout", "READ_LATENCY"]

#: Cycles from ``re`` on the access bus to ``rvalid`` and ``rdata``: the slowest source (the
#: data set, the weights and gradients, or a layer's registers, read a cycle after the
#: request's register and caught a cycle later) caught in a register, then the answer
#: register.
READ_LATENCY = max(SOURCE_LATENCY, MAX_READBACK_LATENCY, 2 + REGISTER_READ_LATENCY) + 2

command_layout = data.StructLayout({
    "op": 3, "count": 16, "sample": 16, "batch": 16, "h_shift": 4, "lr_shift": 5,
    "gradient": 1, "seed": 32,
})


class RelaxationNetwork(wiring.Component):
    """The accelerator core for ``cfg`` with room for ``samples`` training samples
    (``data_attrs``: synthesis attributes of the data set's memories).

    Attributes
    ----------
    cmd : In(stream of command_layout)
        Accepted when idle.
    busy : Out(1)
        A command runs, or the status counters are still taking in its last events (a few
        cycles); the access bus is for idle time.
    addr, wdata, we, re, rdata, rvalid :
        Access bus; reads answer :data:`READ_LATENCY` cycles after ``re`` (``rvalid``),
        and ``rdata`` holds the answer until the next one.
    """

    def __init__(self, cfg, samples=2048, data_attrs=None):
        self.cfg, self.samples, self.data_attrs = cfg, samples, data_attrs
        self.x_depth = samples * cfg.sizes[0]
        self.y_depth = samples * cfg.sizes[-1]
        self.data_bits = bits(max(self.x_depth, self.y_depth))
        super().__init__({
            "cmd": In(stream.Signature(command_layout)),
            "busy": Out(1),
            "addr": In(32), "wdata": In(64), "we": In(1), "re": In(1),
            "rdata": Out(64), "rvalid": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, L = self.cfg, self.cfg.L
        af = cfg.act_format
        n0, nL = cfg.sizes[0], cfg.sizes[-1]

        serial = cfg.engine == "serial"
        if serial:
            m.submodules.engine = core = SerialEngine(cfg, self.data_bits)
            engines = [_SerialLayer(core, l) for l in range(1, L + 1)]
        else:
            engines = [LayerEngine(cfg, l, self.data_bits) for l in range(1, L + 1)]
            for l, e in enumerate(engines, 1):
                m.submodules[f"layer{l}"] = e

        m.submodules.x_mem = x_mem = DataMemory(af.width, self.x_depth, self.data_attrs)
        m.submodules.y_mem = y_mem = DataMemory(af.width, self.y_depth, self.data_attrs)

        # -- bus decode ----------------------------------------------------------------------
        space, layer, index = self.addr[24:28], self.addr[20:24], self.addr[:20]
        cb = col_bits(cfg)
        # bus writes are gated by the controller having been idle for a cycle (a register:
        # no state decoding on the write paths into every PE); ``busy`` covers that cycle
        in_idle = Signal()
        idle = Signal(init=1)
        counting = Signal()   # the controller is not idle (``busy`` also waits for counters)
        m.d.sync += idle.eq(in_idle)
        if serial:
            # one engine: the layer travels with the access, the registers' reads two cycles
            # late as below
            here = idle & (layer >= 1) & (layer <= L)
            m.d.comb += [
                core.bus_layer.eq((layer - 1)[:len(core.bus_layer)]),
                core.rd_layer.eq(delay(m, (layer - 1)[:len(core.bus_layer)], 2, "read_layer")[-1]),
                core.reg_we.eq(here & self.we & (space <= Space.LAM)), core.reg_kind.eq(space[:2]),
                core.reg_index.eq(index), core.reg_value.eq(self.wdata[:32]),
                core.mem_row.eq(index[cb:]), core.mem_col.eq(index[:cb]),
                core.w_we.eq(here & self.we & (space == Space.W)), core.w_wdata.eq(self.wdata)]
        for l, e in enumerate(engines if not serial else [], 1):
            here = idle & (layer == l)
            m.d.comb += [
                e.reg_we.eq(here & self.we & (space <= Space.LAM)), e.reg_kind.eq(space[:2]),
                e.reg_index.eq(index), e.reg_value.eq(self.wdata[:32]),
                e.mem_row.eq(index[cb:]), e.mem_col.eq(index[:cb]),
                e.w_we.eq(here & self.we & (space == Space.W)), e.w_wdata.eq(self.wdata),
            ]
        # writes (idle only) share the read address, so the data set may live in single-port
        # RAM (the iCE40UP5K's SPRAM)
        m.d.comb += [x_mem.wdata.eq(self.wdata), x_mem.we.eq(idle & self.we & (space == Space.X)),
                     y_mem.wdata.eq(self.wdata), y_mem.we.eq(idle & self.we & (space == Space.Y))]

        # -- wiring between layers -----------------------------------------------------------
        # idle-time reads of the registers are two cycles late: a read the cycle after a write
        # samples the register 5 cycles after the write, when the slowest layer's write (three
        # registers, a cycle through the next register) is there
        read_index = delay(m, index, 2, "read_index")[-1]
        # the layers address the memories from the cycle after the controller leaves IDLE
        # (``idle``, a register, not the state's decoding: the layers' first addresses come
        # two cycles later) to the cycle after it is back
        if serial:
            m.d.comb += [x_mem.addr.eq(Mux(idle, index, core.x_addr)), core.x_data.eq(x_mem.data),
                         core.rd_index.eq(read_index)]
        for l, e in enumerate(engines if not serial else [], 1):
            if l == 1:
                m.d.comb += [x_mem.addr.eq(Mux(idle, index, e.src_addr)),
                             e.src_a.eq(x_mem.data)]
            else:
                # the layer below answers in REGISTER_READ_LATENCY cycles; delayed to the data
                # memory's latency, every layer sees its source SOURCE_LATENCY cycles after the
                # address
                below = engines[l - 2]
                extra = SOURCE_LATENCY - REGISTER_READ_LATENCY
                src_a = delay(m, below.rd_a, extra, f"src_a{l}")[-1]
                src_d = delay(m, below.rd_d, extra, f"src_d{l}")[-1]
                m.d.comb += [below.rd_addr.eq(Mux(idle, read_index, e.src_addr)),
                             e.src_a.eq(src_a), e.src_d.eq(src_d),
                             below.lam_in_valid.eq(e.lam_out_valid),
                             below.lam_in_index.eq(e.lam_out_index),
                             below.lam_in_value.eq(e.lam_out_value)]
        top = engines[-1]
        if not serial:
            m.d.comb += top.rd_addr.eq(read_index)
        m.d.comb += [y_mem.addr.eq(Mux(idle, index, top.y_addr)), top.y_data.eq(y_mem.data)]

        # -- status counters -----------------------------------------------------------------
        scoring = Signal()  # train / infer: loss and correct count
        sat = {kind: sum(getattr(e, kind) for e in engines)
               for kind in ("sat_a", "sat_lam", "sat_w")}
        loss = Mux(scoring & top.loss_valid, top.loss_add, 0)
        m.submodules.status = status = StatusCounters({
            Status.SAT_ACTIVATION: len(sat["sat_a"]), Status.SAT_SENSITIVITY: len(sat["sat_lam"]),
            Status.SAT_WEIGHT: len(sat["sat_w"]), Status.LOSS: len(loss)})
        m.d.comb += [status.add.sat_activation.eq(sat["sat_a"]),
                     status.add.sat_sensitivity.eq(sat["sat_lam"]),
                     status.add.sat_weight.eq(sat["sat_w"]), status.add.loss.eq(loss),
                     status.add.cycles.eq(counting),
                     status.add.correct.eq(scoring & top.correct_add)]
        # set by the controller's states; the counter inputs are driven in one place
        stepped = Signal()
        scored = Signal()
        updated = Signal()
        m.d.comb += [status.add.steps.eq(stepped), status.add.samples.eq(scored),
                     status.add.updates.eq(updated)]

        # -- bus reads: registers and counters answer two cycles after the address, weights
        # and gradients readback_latency cycles after, the data set SOURCE_LATENCY cycles
        # after. One read is in flight at a time (the engine waits for ``rvalid``), so each
        # answer is caught in a register as it arrives and held; every read is answered
        # READ_LATENCY cycles after ``re``.
        r_space = Signal(4)
        r_layer = Signal(bits(L))
        r_counter = Signal(4)
        r_valid = Signal()
        r_counter_ok = Signal()   # the index names a status counter
        # r_layer: the engine's index (layer - 1), as narrow as the engines are few
        m.d.sync += [r_space.eq(space), r_layer.eq(Mux(layer >= 1, layer - 1, 0)[:bits(L)]),
                     r_counter.eq(index[:4]),
                     r_counter_ok.eq(index < len(Status)), r_valid.eq(self.re)]
        late = READ_LATENCY - 1
        space_at = delay(m, r_space, late - 1, "read_space")   # [k]: after edge k + 1
        valid_at = delay(m, r_valid, late - 1, "read_valid")
        regs_at = 1 + REGISTER_READ_LATENCY   # the registers' answer is in rd_* at [regs_at]
        readback = SERIAL_READBACK_LATENCY if serial else readback_latency(cfg)
        layer_at = delay(m, r_layer, max(readback - 1, regs_at), "read_layer")
        counter_ok_at = delay(m, r_counter_ok, 1, "read_counter_ok")
        pick = lambda attr, at: Array([getattr(e, attr) for e in engines])[at]
        m.d.comb += status.raddr.eq(r_counter)
        # Each answer is caught in ``early`` (counters at edge 3, registers at edge regs_at + 2)
        # or ``stored`` (weights and gradients, the data set) as it arrives. Which space a
        # catch takes is decided a cycle ahead, into a register per space: the answers
        # converge from all over the chip, and the decode of the read's space in front of
        # their multiplexer was the slowest path of the ECP5 64-64-10 on one lane per PE
        # (90.3 MHz, 7.8 ns of wire).
        arrives = {Space.STATUS: 1, Space.A: regs_at, Space.D: regs_at, Space.LAM: regs_at,
                   Space.W: readback - 1, Space.G: readback - 1,
                   Space.X: SOURCE_LATENCY - 1, Space.Y: SOURCE_LATENCY - 1}
        take = {sp: Signal(name=f"take_{sp.name.lower()}") for sp in arrives}
        for sp, at in arrives.items():
            m.d.sync += take[sp].eq(valid_at[at - 1] & (space_at[at - 1] == sp))
        early = Signal(64)
        with m.If(take[Space.STATUS]):
            m.d.sync += early.eq(Mux(counter_ok_at[1], status.rdata, 0))
        for sp, attr in ((Space.A, "rd_a"), (Space.D, "rd_d"), (Space.LAM, "rd_lam")):
            with m.If(take[sp]):
                value = pick(attr, layer_at[regs_at])
                m.d.sync += early.eq(value.as_signed() if sp != Space.D else value)
        stored = Signal(signed(max(cfg.master_format.width, cfg.gradient_acc_bits, af.width)))
        for sp, attr in ((Space.W, "w_rdata"), (Space.G, "g_rdata")):
            with m.If(take[sp]):
                m.d.sync += stored.eq(pick(attr, layer_at[readback - 1]))
        for sp, memory in ((Space.X, x_mem), (Space.Y, y_mem)):
            with m.If(take[sp]):
                m.d.sync += stored.eq(memory.data)
        # the answer is held until the next read's (the engine sends it from here)
        with m.If(valid_at[-1]):
            with m.Switch(space_at[-1]):
                with m.Case(Space.W, Space.G, Space.X, Space.Y):
                    m.d.sync += self.rdata.eq(stored)
                with m.Default():
                    m.d.sync += self.rdata.eq(early)
        m.d.sync += self.rvalid.eq(valid_at[-1])

        # -- controller ----------------------------------------------------------------------
        cmd = Signal(command_layout)
        t = Signal(17)            # step within the batch (train) or run (relax), 1-based
        batch_start = Signal(16)  # first sample of the batch
        batch_size = Signal(17)
        # samples left in the command, none left
        remaining = Signal(17)
        finished = Signal()
        end = Signal(17)                             # one past the command's last sample
        slots = [Signal(bits(e.depth), name=f"slot{l}") for l, e in enumerate(engines, 1)]
        start = Signal()
        update_start = Signal()
        commit = Signal()
        seed_load = Signal()
        all_done = Signal()
        m.d.comb += all_done.eq(sum(e.done for e in engines) == len(engines))

        def in_batch(offset):
            k = t.as_signed() - offset
            return (k >= 0) & (k < batch_size)

        relax_mode = cmd.op == Op.RELAX

        def batch_sample(offset):
            """The sample of step ``t - offset`` (relax: the command's; train and infer: the
            batch's, its first when that step is a bubble, so every address stays inside the
            memory): ``t - offset`` and the batch test registered during STEP, the sample
            during STEP_SAMPLE, valid when the step starts."""
            k = Signal(signed(len(t) + 1), name=f"k_t{offset}")
            inside = Signal(name=f"in_batch_t{offset}")
            m.d.sync += [k.eq(t.as_signed() - offset), inside.eq(in_batch(offset))]
            sample = Signal(16, name=f"sample_t{offset}")
            m.d.sync += sample.eq(Mux(relax_mode, cmd.sample,
                                      Mux(inside, batch_start + k, batch_start)))
            return sample

        def address(sample, width):
            return const_mul(sample, width)[:self.data_bits]

        learning = cmd.op == Op.TRAIN
        for l, (e, slot) in enumerate(zip(engines, slots), 1):
            g = 2 + 2 * L - l  # gradient sample = t - g
            m.d.comb += [
                e.start.eq(start), e.update_start.eq(update_start), e.commit.eq(commit),
                e.h_shift.eq(Mux(relax_mode, cmd.h_shift, 0)), e.lr_shift.eq(cmd.lr_shift),
                e.seed.eq(cmd.seed), e.seed_load.eq(seed_load),
                e.sensitivity_on.eq(relax_mode | learning)]
            # what depends on the step number is registered (the STEP state gives it the
            # cycle): the sample arithmetic stays off the memories' address paths
            m.d.sync += [
                e.forward_valid.eq(relax_mode | in_batch(l)),
                e.backward_valid.eq(relax_mode | (learning & in_batch(g))),
                e.output_valid.eq(relax_mode | in_batch(1 + L)),
                e.gradient_on.eq(Mux(relax_mode, cmd.gradient & (t == cmd.count),
                                     learning & in_batch(g))),
                e.overwrite.eq(relax_mode | (t == g)),
                e.slot_w.eq(slot),
                # train: read the slot written D steps ago, i.e. the next one (D + 1 slots)
                e.slot_r.eq(Mux(relax_mode, slot, Mux(slot == e.depth - 1, 0, slot + 1))),
            ]
            if l == 1:
                # left combinational after its registered sample (for a power-of-two width
                # the product is wiring); the gradient's x comes from the layer's skew memory
                m.d.comb += e.x_base.eq(address(batch_sample(1), n0))
        m.d.sync += top.y_base.eq(address(batch_sample(1 + L), nL))

        def advance_slots():
            for e, slot in zip(engines, slots):
                m.d.sync += slot.eq(Mux(slot == e.depth - 1, 0, slot + 1))

        # inference needs a sample only until its output is scored (step t = k + L + 1)
        steps_in_batch = Mux(learning, batch_size + 2 * L, batch_size + L + 1)
        # the commit's decisions, registered while the step runs (t is constant then)
        last_relax_step = Signal()
        last_batch_step = Signal()
        sample_scored = Signal()
        m.d.sync += [last_relax_step.eq(t == cmd.count), last_batch_step.eq(t == steps_in_batch),
                     sample_scored.eq(in_batch(1 + L))]
        # busy until the counters hold every event of the command
        m.d.comb += [counting.eq(~(in_idle & idle)),
                     self.busy.eq(counting | ~status.settled)]
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [self.cmd.ready.eq(1), in_idle.eq(1)]
                with m.If(self.cmd.valid):
                    m.d.sync += [cmd.eq(self.cmd.payload), t.eq(1),
                                 batch_start.eq(self.cmd.payload.sample),
                                 end.eq(self.cmd.payload.sample + self.cmd.payload.count)]
                    with m.Switch(self.cmd.payload.op):
                        with m.Case(Op.RELAX):
                            with m.If(self.cmd.payload.count != 0):
                                m.next = "STEP"
                        with m.Case(Op.TRAIN, Op.INFER):
                            m.next = "BATCH"
                        with m.Case(Op.UPDATE):
                            m.next = "UPDATE"
                        with m.Case(Op.SEED):
                            m.next = "SEED"
                        with m.Case(Op.CLEAR):
                            m.d.comb += status.clear.eq(1)
            with m.State("SEED"):
                m.d.comb += seed_load.eq(1)
                m.next = "IDLE"
            with m.State("BATCH"):   # the batch arithmetic, registered, then the decision
                m.d.sync += [remaining.eq(end - batch_start),
                             finished.eq((batch_start >= end) | (cmd.batch == 0))]
                m.next = "BATCH_SIZE"
            with m.State("BATCH_SIZE"):
                m.d.sync += [batch_size.eq(Mux(remaining < cmd.batch, remaining, cmd.batch)),
                             t.eq(1)]
                with m.If(finished):
                    m.next = "IDLE"
                with m.Else():
                    m.next = "STEP"
            with m.State("STEP"):   # the registered step controls settle
                m.next = "STEP_SAMPLE"
            with m.State("STEP_SAMPLE"):   # and the step's samples (two registered stages)
                m.next = "START"
            with m.State("START"):
                m.d.comb += [start.eq(1), scoring.eq(~relax_mode)]
                m.next = "WAIT"
            with m.State("WAIT"):
                m.d.comb += scoring.eq(~relax_mode)
                with m.If(all_done):
                    m.next = "COMMIT"
            with m.State("COMMIT"):
                m.d.comb += commit.eq(1)
                m.d.sync += t.eq(t + 1)
                m.d.comb += [stepped.eq(1), scored.eq(~relax_mode & sample_scored)]
                with m.If(~relax_mode):
                    advance_slots()
                with m.If(relax_mode & last_relax_step):
                    m.next = "IDLE"
                with m.Elif(learning & last_batch_step):
                    m.next = "UPDATE"
                with m.Elif(~relax_mode & last_batch_step):
                    m.d.sync += batch_start.eq(batch_start + batch_size)
                    m.next = "BATCH"
                with m.Else():
                    m.next = "STEP"
            with m.State("UPDATE"):
                m.d.comb += update_start.eq(1)
                m.next = "UPDATE_WAIT"
            with m.State("UPDATE_WAIT"):
                with m.If(all_done):
                    m.d.comb += updated.eq(1)
                    with m.If(cmd.op == Op.TRAIN):
                        m.d.sync += batch_start.eq(batch_start + batch_size)
                        m.next = "BATCH"
                    with m.Else():
                        m.next = "IDLE"
        return m


class _SerialLayer:
    """Layer ``l`` of a :class:`~.serial.SerialEngine` as the controller sees a layer engine:
    the engine's shared controls and events (the events on layer 1's only, so that the
    network's sums count each once), and layer ``l``'s entries of its per-layer controls."""

    def __init__(self, core, l):
        self.depth = skew_depth(core.cfg, l) + 1
        for name in ("start", "update_start", "done", "commit", "h_shift", "lr_shift", "seed",
                     "seed_load", "sensitivity_on", "output_valid", "x_base", "y_base",
                     "y_addr", "y_data", "loss_add", "loss_valid", "correct_add",
                     "rd_a", "rd_d", "rd_lam", "w_rdata", "g_rdata"):
            setattr(self, name, getattr(core, name, None))
        for name in ("forward_valid", "backward_valid", "gradient_on", "overwrite", "slot_w",
                     "slot_r"):
            setattr(self, name, getattr(core, name)[l - 1])
        for name in ("sat_a", "sat_lam", "sat_w"):
            setattr(self, name, getattr(core, name) if l == 1 else Const(0, 1))
        if self.commit is None:
            self.commit = Signal()   # writes go in place: nothing to commit
