"""Layer engine: the chain of processing elements of one layer and its sequencer.

One relaxation step of layer ``l`` issues, one column per cycle into the PE chain:

1. forward, fold by fold, column by column: ``a_l, d_l <- f(W_l [a_{l-1}; 1])``, reading
   ``a_{l-1}`` from the layer below (or ``x`` from the data memory for layer 1) and writing it
   (with ``d_{l-1}``) into the skew memory; when the step accumulates gradients, the same words
   do ``G_l (+)= lam_l [a_{l-1}; 1]^T`` with the skewed ``a_{l-1}`` on the PEs' gradient
   multipliers;
2. backward (``l >= 2``), column by column with the folds inside: the partial sums of
   ``W_l^T lam_l`` leave the chain's tail, are scaled by the (skewed) ``d_{l-1}`` and written as
   the next ``lam_{l-1}`` of the layer below.

Layer ``L`` also runs the output unit: ``lam_L <- d_L (a_L - y)``, the loss ``|a_L - y|^2`` and
the correct-prediction test. The skew memory holds ``2(L-l+1) + 1`` slots of ``a_{l-1}`` (and
``d_{l-1}`` for ``l >= 2``); in trace mode the read slot equals the write slot, and the
gradient takes the forward operand itself (no delay; the slot is being written).
"""

from amaranth import Module, Signal, Mux, Array, Const, Cat, signed, unsigned
from amaranth.lib import wiring, data
from amaranth.lib.wiring import In, Out

from .arith import derivative_scale, saturate, const_mul, delay, kept_copy
from .datamem import DataMemory
from .ram import block_ram
from .pe import (ProcessingElement, control_layout, groups, bits, OP_FORWARD, OP_BACKWARD,
                 OP_UPDATE, WRITE_LATENCY, BACKWARD_LATENCY, LAM_LATENCY, pick_ahead,
                 lane_pick_registered)

__all__ = ["LayerEngine", "skew_depth", "lam_write_latency", "readback_latency",
           "SOURCE_LATENCY", "MAX_READBACK_LATENCY", "REGISTER_READ_LATENCY"]

#: Cycles from ``src_addr`` / ``y_addr`` to ``src_a``, ``src_d`` / ``y_data``: the data set's
#: read latency, to which the network delays the layer below's registers too.
SOURCE_LATENCY = DataMemory.LATENCY
#: Cycles from ``rd_addr`` to ``rd_a``, ``rd_d``, ``rd_lam``: the address's fold and PE, a copy
#: of the fold at each PE, each PE's fold into a register, the PE into the answer's register.
REGISTER_READ_LATENCY = 4
#: PEs whose events a layer sums, or whose answers it picks, in one cycle: more are taken in
#: registered groups of this many (a layer's 16 PEs in one cycle were 12.6-13 ns paths on the
#: ULX3S preset, most of it wire).
GROUP = 4
#: The most :func:`readback_latency` may be.
MAX_READBACK_LATENCY = 8


def bus_registered(cfg):
    """Whether each layer takes the idle-time bus (``reg_*``, ``mem_*``, ``w_*``) through a
    register of its own before its PEs' copies: in networks with a layer of more than
    :data:`GROUP` PEs (all their layers, so that reads take the same time in each)."""
    return max(cfg.pes) > GROUP


def readback_latency(cfg):
    """Cycles from ``mem_row``, ``mem_col`` to ``w_rdata``, ``g_rdata``: the layer's register
    of the address (with :func:`bus_registered`, two), the PE's, the PE's memory read, its
    register (and with :func:`~.pe.lane_pick_registered` its pick of the lane), then the
    layer's pick of the PE: one register, or with :func:`bus_registered` two (within groups
    of :data:`GROUP` PEs, then the group); the same in all layers."""
    return (7 if bus_registered(cfg) else 5) + lane_pick_registered(cfg)


def count(m, name, events, valid=None, group=GROUP):
    """The sum of ``events`` (a value each, e.g. one per PE), gated by ``valid``: summed in
    registered groups of ``group`` when there are more, so one cycle's adder spans a group
    rather than a layer. The value to register; one cycle later than the events with one
    group, two with several."""
    gate = lambda v: v if valid is None else Mux(valid, v, 0)
    if len(events) <= group:
        return gate(sum(events))
    sums = []
    for k in range(0, len(events), group):
        part = sum(events[k:k + group])
        sums.append(Signal(part.shape(), name=f"{name}_group{k // group}"))
        m.d.sync += sums[-1].eq(gate(part))
    return sum(sums)


def lam_write_latency(cfg, layer):
    """Cycles from a sensitivity target at layer ``layer``'s ``lam_in_*`` (or its output
    unit's) to its write in a PE: in a layer of several PEs (:func:`~.pe.pick_ahead`) the
    layer's register of it for that PE, then the PE's, one cycle longer."""
    return LAM_LATENCY + (2 if pick_ahead(cfg, layer) else 0)


def skew_depth(cfg, layer):
    """Steps between a layer's forward pass over a sample and its gradient for that sample."""
    return 2 * (cfg.L - layer + 1)


class LayerEngine(wiring.Component):
    """Layer ``layer`` (1-based) of ``cfg``.

    Attributes
    ----------
    start, update_start : In(1)
        Run one relaxation step / one weight update. ``done`` is high while idle (from the
        cycle after the engine is back, low from the cycle after a start).
    gradient_on, overwrite : In(1)
        This step accumulates gradients (``overwrite``: replacing the accumulator).
    forward_valid, backward_valid, output_valid : In(1)
        The step's sample is real (not a pipeline bubble): gates counters and lam writes.
    sensitivity_on : In(1)
        The output unit writes ``lam_L`` (not during inference, which only scores).
    slot_w, slot_r : In
        Skew-memory slots written by the forward pass and read by backward and gradient.
    src_addr, src_a, src_d :
        Read port into the layer below (``a_{l-1}``, ``d_{l-1}``, :data:`SOURCE_LATENCY`
        cycles latency); for layer 1 ``src_addr`` addresses the data memory from
        ``x_base``, the step's sample.
    rd_addr, rd_a, rd_d, rd_lam :
        Read port of this layer's current registers (:data:`REGISTER_READ_LATENCY`).
    lam_in_* : sensitivity targets written by the layer above.
    lam_out_* : (``l >= 2``) sensitivity targets for the layer below.
    y_addr, y_data, y_base, loss_add, loss_valid, correct_add : (layer ``L``) output unit.
    reg_*, mem_*, w_*, g_rdata : idle-time debug access (trace mode, parameters, gradients);
        writes reach the PEs a cycle later than they would straight from the ports (a
        register written at cycle 0 holds the value from cycle 3, a cycle later in a layer of
        several PEs and one more with :func:`bus_registered`: at most cycle 5, when a read
        the cycle after the write samples it); ``w_rdata``,
        ``g_rdata`` answer :func:`readback_latency` cycles after ``mem_row``,
        ``mem_col``.
    sat_a, sat_lam, sat_w : saturation events, counted one to three cycles after they happen
        (sums over more than :data:`GROUP` PEs take a cycle more).
    """

    def __init__(self, cfg, layer, data_addr_bits):
        self.cfg, self.layer = cfg, layer
        self.n_in, self.n = cfg.sizes[layer - 1], cfg.sizes[layer]
        self.P = cfg.pes[layer - 1]
        self.folds = -(-self.n // self.P)       # rows per PE (at most)
        self.groups = groups(cfg, layer)         # fold groups the sequencer issues
        self.C = cfg.row_length(layer)
        self.depth = skew_depth(cfg, layer) + 1
        af, sf, mf = cfg.act_format, cfg.sens_format, cfg.master_format
        is_last = layer == cfg.L
        ports = {
            "start": In(1), "update_start": In(1), "done": Out(1, init=1),
            "gradient_on": In(1), "overwrite": In(1), "forward_valid": In(1),
            "backward_valid": In(1), "output_valid": In(1), "sensitivity_on": In(1),
            "h_shift": In(4), "lr_shift": In(5), "commit": In(1),
            "slot_w": In(bits(self.depth)), "slot_r": In(bits(self.depth)),
            "src_addr": Out(data_addr_bits if layer == 1 else bits(self.n_in)),
            "src_a": In(signed(af.width)), "src_d": In(unsigned(2)),
            "rd_addr": In(bits(self.n)), "rd_a": Out(signed(af.width)),
            "rd_d": Out(unsigned(2)), "rd_lam": Out(signed(sf.width)),
            "lam_in_valid": In(1), "lam_in_index": In(bits(self.n)),
            "lam_in_value": In(signed(sf.width)),
            "reg_we": In(1), "reg_kind": In(2), "reg_index": In(bits(self.n)),
            "reg_value": In(signed(32)),
            "mem_row": In(bits(self.n)), "mem_col": In(bits(self.C)), "w_we": In(1),
            "w_wdata": In(signed(mf.width)), "w_rdata": Out(signed(mf.width)),
            "g_rdata": Out(signed(cfg.gradient_acc_bits)),
            "seed": In(32), "seed_load": In(1),
            "sat_a": Out(8), "sat_lam": Out(8), "sat_w": Out(8),
        }
        if layer == 1:
            ports.update({"x_base": In(data_addr_bits)})
        else:
            ports.update({"lam_out_valid": Out(1), "lam_out_index": Out(bits(self.n_in)),
                          "lam_out_value": Out(signed(sf.width))})
        if is_last:
            ports.update({"y_addr": Out(data_addr_bits), "y_data": In(signed(af.width)),
                          "y_base": In(data_addr_bits), "loss_add": Out(2 * af.width + 1),
                          "loss_valid": Out(1), "correct_add": Out(1)})
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        cfg, l, P, C, n, n_in = self.cfg, self.layer, self.P, self.C, self.n, self.n_in
        af, sf = cfg.act_format, cfg.sens_format
        folds, n_groups = self.folds, self.groups
        ctl = control_layout(cfg, l)

        pes = [ProcessingElement(cfg, l, p) for p in range(P)]
        for p, pe in enumerate(pes):
            m.submodules[f"pe{p}"] = pe
            m.d.comb += pe.commit.eq(self.commit)
            # the shifts and the seed travel down the chain: PE p has a command's p + 1 cycles
            # after the controller takes it, and uses them first several cycles later (the
            # step or update starts two cycles after the command, its first write comes later
            # still; the first update, steps later)
            if p:
                before = pes[p - 1]
                m.d.comb += [pe.ctl_in.eq(before.ctl_out), pe.psum_in.eq(before.psum_out),
                             pe.ctl_early.eq(before.ctl_in),
                             pe.h_shift.eq(before.h_shift_out),
                             pe.lr_shift.eq(before.lr_shift_out),
                             pe.seed.eq(before.seed_out), pe.seed_load.eq(before.seed_load_out)]
            else:
                m.d.comb += [pe.h_shift.eq(self.h_shift), pe.lr_shift.eq(self.lr_shift),
                             pe.seed.eq(self.seed), pe.seed_load.eq(self.seed_load)]

        # Row r lives in PE r % P, fold r // P: constant tables for the demuxes.
        pe_of = lambda count: Array([Const(r % P, bits(P)) for r in range(count)])
        fold_of = lambda count: Array([Const(r // P, bits(folds)) for r in range(count)])

        # -- read port of the current registers --------------------------------------------
        # Registered levels: the row's fold and PE, a copy of the fold beside each PE, each
        # PE's fold into a register of that PE's, then the PE. One multiplexer over every row,
        # its inputs spread over all the PEs, was the ECP5 preset's slowest path (6.3 ns of
        # wire inside it, 84.5 MHz), and one fold register driving every PE's multiplexer the
        # 64-64-10's (5.8 ns).
        read_addr = Signal(bits(n))  # the output unit's while it runs, else rd_addr
        output_busy = Signal()
        read_fold = Signal(bits(folds))
        read_pe = Signal(bits(P))
        m.d.sync += [read_fold.eq(fold_of(n)[read_addr]), read_pe.eq(pe_of(n)[read_addr])]
        read_pe_r = delay(m, read_pe, 2, "read_pe")[-1]
        picked = {kind: [] for kind in ("a", "d", "lam")}
        for p, pe in enumerate(pes):
            fold_here = kept_copy(m, read_fold, f"read_fold{p}")
            for kind, regs in picked.items():
                array = getattr(pe, kind)
                reg = Signal.like(array[0], name=f"read_{kind}{p}")
                m.d.sync += reg.eq(Array(array)[fold_here] if len(array) > 1 else array[0])
                regs.append(reg)
        m.d.sync += [self.rd_a.eq(Array(picked["a"])[read_pe_r]),
                     self.rd_d.eq(Array(picked["d"])[read_pe_r]),
                     self.rd_lam.eq(Array(picked["lam"])[read_pe_r])]

        # -- sensitivity writes into this layer (from above, or the output unit) -------------
        lam_valid = Signal()
        lam_index = Signal(bits(n))
        lam_value = Signal(signed(sf.width))
        # with several PEs, registered for each PE and taken in only by the PE written (so
        # Yosys keeps the copies apart): the index's decoding and its fan-out to every PE's
        # folds were one path (9.9 ns of wire in the ECP5 64-64-10 build)
        for p, pe in enumerate(pes):
            mine = lam_valid & (pe_of(n)[lam_index] == p)
            lam_fold = fold_of(n)[lam_index]
            if pick_ahead(cfg, l):
                m.d.sync += pe.lam_we.eq(mine)
                with m.If(mine):
                    m.d.sync += [pe.lam_fold.eq(lam_fold), pe.lam_target.eq(lam_value)]
            else:
                m.d.comb += [pe.lam_we.eq(mine), pe.lam_fold.eq(lam_fold),
                             pe.lam_target.eq(lam_value)]
        # idle-time writes of registers and weights reach the PEs decoded and registered a
        # cycle later: the decode and its fan-out to every register are two paths, not one
        # (the network delays its idle-time reads of the registers to match). Only the
        # write enable is decoded per PE; each group of GROUP PEs has its own copy of the
        # write's kind, fold and value and of the memory access's fold, column and data,
        # taken every cycle. (With an enable from the decode on them, the decode drove the
        # enables of all of them: the ULX3S preset's slowest path at 74.9 MHz. One register
        # for all PEs, 84.1 MHz: 5.8 ns of wire to the farthest PE's register-write decode.
        # A copy for each PE put 16 sinks across the chip on every bit of the layer's bus
        # register, and one of those nets was the two-lane preset's slowest path: 14.1 ns of
        # wire, 68.5 MHz.) A layer of one PE has nothing to keep apart: there its copies of
        # the row's fold may merge.
        copies = {}

        def copy(value, name, p):
            if P == 1:
                register = Signal(value.shape(), name=f"pe_{name}", reset_less=True)
                m.d.sync += register.eq(value)
                return register
            if (name, p // GROUP) not in copies:
                copies[name, p // GROUP] = kept_copy(m, value, f"{name}_group{p // GROUP}")
            return copies[name, p // GROUP]
        # with wide layers in the network, each layer takes the bus through a register of its
        # own first: one for all PEs of the network was a net that some placements of the
        # ULX3S preset routed in 14.7-17 ns
        bus = {name: getattr(self, name) for name in (
            "reg_we", "reg_kind", "reg_index", "reg_value", "mem_row", "mem_col", "w_we",
            "w_wdata")}
        if bus_registered(cfg):
            bus = {name: kept_copy(m, value, f"bus_{name}") for name, value in bus.items()}
        reg_fold = fold_of(n)[bus["reg_index"]]
        # the bits a register takes (kept registers keep unused bits too)
        reg_value = bus["reg_value"][:max(af.width, sf.width, 2)].as_signed() if P > 1 else \
            bus["reg_value"]
        # in a layer of several PEs the write takes a register more beside each PE: a group's
        # copy decoded into the folds of its PEs was the two-lane ULX3S preset's slowest path
        # asked for 80 MHz (9.1 ns of wire to a PE's a_next decode)
        for p, pe in enumerate(pes):
            reg_we = bus["reg_we"] & (pe_of(n)[bus["reg_index"]] == p)
            reg = {"reg_kind": bus["reg_kind"], "reg_fold": reg_fold, "reg_value": reg_value}
            reg = {name: copy(value, name, p) for name, value in reg.items()}
            if P > 1:
                reg_we = delay(m, reg_we, 1, f"reg_we{p}")[-1]
                reg = {name: kept_copy(m, value, f"{name}{p}") for name, value in reg.items()}
            m.d.sync += pe.reg_we.eq(reg_we)
            m.d.comb += [getattr(pe, name).eq(value) for name, value in reg.items()]

        # -- idle-time memory access ---------------------------------------------------------
        # the PE whose read answers: mem_pe[k], k cycles after the layer's address (the PEs
        # answer at 4, or 5 with their lane picks registered)
        answer = 4 + lane_pick_registered(cfg)
        mem_pe = delay(m, pe_of(n)[bus["mem_row"]], answer + 1, "mem_pe")
        mem_fold = fold_of(n)[bus["mem_row"]]
        for p, pe in enumerate(pes):
            m.d.sync += pe.w_we.eq(bus["w_we"] & (pe_of(n)[bus["mem_row"]] == p))
            m.d.comb += [pe.mem_fold.eq(copy(mem_fold, "mem_fold", p)),
                         pe.mem_col.eq(copy(bus["mem_col"], "mem_col", p)),
                         pe.w_wdata.eq(copy(bus["w_wdata"], "w_wdata", p))]
        for kind in ("w_rdata", "g_rdata"):
            answers = [getattr(pe, kind) for pe in pes]
            if not bus_registered(cfg):
                m.d.sync += getattr(self, kind).eq(Array(answers)[mem_pe[answer]])
                continue
            within = mem_pe[answer][:2] if P > GROUP else mem_pe[answer]
            groups = [Signal.like(answers[0], name=f"{kind}_group{k // GROUP}")
                      for k in range(0, P, GROUP)]
            for k, group in zip(range(0, P, GROUP), groups):
                m.d.sync += group.eq(Array(answers[k:k + GROUP])[within])
            m.d.sync += getattr(self, kind).eq(
                Array(groups)[mem_pe[answer + 1][2:]] if P > GROUP else groups[0])

        # -- saturation events ---------------------------------------------------------------
        # summed over registered groups of PEs: one sum over the PEs in a cycle spans the
        # layer (the ULX3S preset's slowest path, 16 PEs); a count loses nothing by a delay
        m.d.sync += [self.sat_a.eq(count(m, "sat_a", [pe.sat_a for pe in pes],
                                         self.forward_valid)),
                     self.sat_w.eq(count(m, "sat_w", [pe.sat_w for pe in pes]))]
        # sensitivity targets saturate below (hidden layers) or in the output unit
        sat_lam_tail = Signal()
        sat_lam_output = Signal()

        # -- skew memory of (a_{l-1}, d_{l-1}) -----------------------------------------------
        skewed = {"a": signed(af.width)} | ({"d": unsigned(2)} if l > 1 else {})
        m.submodules.skew = skew = block_ram(data.StructLayout(skewed), self.depth * n_in)
        skew_wr, skew_grad = skew.write_port(), skew.read_port()
        if l > 1:
            skew_tail = skew.read_port()
        # trace mode reads the slot being written: the gradient takes the forward operand
        same_slot = Signal()
        m.d.sync += same_slot.eq(self.slot_r == self.slot_w)

        # -- sequencer -----------------------------------------------------------------------
        # ``fold``: the fold group
        fold = Signal(bits(n_groups))
        col = Signal(bits(C))
        issue = Signal(ctl)  # word being issued; its operand arrives SOURCE_LATENCY later
        # the last word's final write: a PE's at P + WRITE_LATENCY cycles; the backward tail's
        # target reaches the layer below at P + BACKWARD_LATENCY + 4 (the tail's registers)
        # and is written lam_write_latency cycles later
        below = lam_write_latency(cfg, l - 1) if l > 1 else 0
        drain_end = SOURCE_LATENCY - 1 + P + max(WRITE_LATENCY, BACKWARD_LATENCY + 4 + below)
        drain = Signal(range(drain_end + 1))
        one = Const(af.one, signed(af.width))
        last_col, last_fold = col == C - 1, fold == n_groups - 1
        gradient_on = Signal()

        def next_fold_major(next_state):
            with m.If(last_col):
                m.d.sync += col.eq(0)
                with m.If(last_fold):
                    m.d.sync += fold.eq(0)
                    m.next = next_state
                with m.Else():
                    m.d.sync += fold.eq(fold + 1)
            with m.Else():
                m.d.sync += col.eq(col + 1)

        after_forward = "BACKWARD" if l > 1 else "DRAIN"
        # layer 1 reads x from the data memory: the sample's base address, a register set
        # as the step begins
        x_base = Signal.like(self.src_addr)
        with m.FSM():
            with m.State("IDLE"):
                # registered (the controller's next state depends on it): high from the
                # cycle after the engine is back in IDLE, low from the cycle after a start
                m.d.sync += self.done.eq(~(self.start | self.update_start))
                with m.If(self.start):
                    m.d.sync += [fold.eq(0), col.eq(0), gradient_on.eq(self.gradient_on)]
                    if l == 1:
                        m.d.sync += x_base.eq(self.x_base)
                    m.next = "FORWARD"
                with m.Elif(self.update_start):
                    m.d.sync += [fold.eq(0), col.eq(0)]
                    m.next = "UPDATE"
            with m.State("FORWARD"):
                m.d.comb += [issue.valid.eq(1), issue.op.eq(OP_FORWARD), issue.first.eq(col == 0),
                             issue.last.eq(last_col), issue.gradient.eq(gradient_on),
                             issue.overwrite.eq(self.overwrite)]
                next_fold_major(after_forward)
            if l > 1:
                with m.State("BACKWARD"):
                    m.d.comb += [issue.valid.eq(1), issue.op.eq(OP_BACKWARD),
                                 issue.first.eq(fold == 0), issue.last.eq(last_fold)]
                    with m.If(last_fold):
                        m.d.sync += fold.eq(0)
                        with m.If(col == n_in - 1):
                            m.d.sync += col.eq(0)
                            m.next = "DRAIN"
                        with m.Else():
                            m.d.sync += col.eq(col + 1)
                    with m.Else():
                        m.d.sync += fold.eq(fold + 1)
            with m.State("UPDATE"):
                m.d.comb += [issue.valid.eq(1), issue.op.eq(OP_UPDATE), issue.first.eq(col == 0),
                             issue.last.eq(last_col)]
                next_fold_major("DRAIN")
            with m.State("DRAIN"):
                # counts from 0 (its reset) on entry: cleared on the way out
                m.d.sync += drain.eq(drain + 1)
                with m.If(drain == drain_end):
                    m.d.sync += drain.eq(0)
                    m.next = "WAIT_OUTPUT"
            with m.State("WAIT_OUTPUT"):
                with m.If(~output_busy):
                    m.next = "IDLE"
        m.d.comb += [issue.fold.eq(fold), issue.col.eq(col)]
        issued = delay(m, issue, SOURCE_LATENCY, "issued")
        pending = issued[-1]   # the word whose operand arrives now

        # Source addresses for the word being issued (data arrives with ``pending``); the
        # skew memory takes the first fold group's operands and gives the gradient's
        m.d.comb += [self.src_addr.eq(x_base + col if l == 1 else col),
                     skew_grad.addr.eq(const_mul(self.slot_r, n_in) + issued[-3].col),
                     skew_wr.addr.eq(const_mul(self.slot_w, n_in) + pending.col),
                     skew_wr.data.a.eq(self.src_a),
                     skew_wr.en.eq(pending.valid & (pending.op == OP_FORWARD)
                                   & (pending.fold == 0) & (pending.col < n_in))]
        if l > 1:
            m.d.comb += skew_wr.data.d.eq(self.src_d)
        # read a cycle ahead: the block RAM's output goes straight into a register
        skewed_a = Signal(signed(af.width))
        m.d.sync += skewed_a.eq(skew_grad.data.a)
        bias = pending.col == n_in
        first_word = Signal(ctl)
        m.d.sync += [first_word.eq(pending),
                     first_word.operand.eq(Mux(bias, one, self.src_a)),
                     first_word.grad_operand.eq(
                         Mux(bias, one, Mux(same_slot, self.src_a, skewed_a)))]
        m.d.comb += [pes[0].ctl_in.eq(first_word), pes[0].ctl_early.eq(pending)]

        # -- backward tail: partial sums -> lam_{l-1} targets --------------------------------
        if l > 1:
            act_below = cfg.activations[l - 2]
            # the last PE's word, delayed to its psum_out
            tail = delay(m, pes[-1].ctl_out, BACKWARD_LATENCY - 1, "tail")
            at_tail = tail[-1].valid & (tail[-1].op == OP_BACKWARD) & tail[-1].last
            psum = Signal(signed(cfg.backward_acc_bits(l)))
            t_valid = Signal()
            t_col = Signal(bits(n_in))
            # d_{l-1} read a cycle ahead, so the block RAM's output goes straight into a
            # register: its 5.8 ns clock-to-output plus 8 ns of wire into the scaling below
            # were the ECP5 preset's slowest path at 70.3 MHz
            t_d = Signal(2)
            m.d.comb += skew_tail.addr.eq(const_mul(self.slot_r, n_in) + tail[-2].col)
            m.d.sync += [t_valid.eq(at_tail), t_col.eq(tail[-1].col), psum.eq(pes[-1].psum_out),
                         t_d.eq(skew_tail.data.d)]
            # d_{l-1} (W^T lam) rounded, registered, then saturated into the target
            scaled = derivative_scale(psum, cfg.backward_frac, t_d, act_below, sf)
            s_valid = Signal()
            s_col = Signal(bits(n_in))
            s_value = Signal(scaled.shape())
            m.d.sync += [s_valid.eq(t_valid), s_col.eq(t_col), s_value.eq(scaled)]
            target, sat = saturate(s_value, sf)
            m.d.sync += [self.lam_out_valid.eq(s_valid & self.backward_valid),
                         self.lam_out_index.eq(s_col), self.lam_out_value.eq(target)]
            m.d.comb += sat_lam_tail.eq(s_valid & self.backward_valid & sat)

        # -- output unit (layer L) -----------------------------------------------------------
        if l == cfg.L:
            self._output_unit(m, read_addr, output_busy, lam_valid, lam_index, lam_value,
                              sat_lam_output)
        else:
            m.d.comb += [lam_valid.eq(self.lam_in_valid), lam_index.eq(self.lam_in_index),
                         lam_value.eq(self.lam_in_value), read_addr.eq(self.rd_addr)]
        m.d.sync += self.sat_lam.eq(sat_lam_tail + sat_lam_output)
        return m

    def _output_unit(self, m, read_addr, output_busy, lam_valid, lam_index, lam_value,
                     sat_lam_output):
        """``lam_L = d_L (a_L - y)`` row by row, the loss and the argmax comparison."""
        cfg, n, af, sf = self.cfg, self.n, self.cfg.act_format, self.cfg.sens_format
        row = Signal(bits(n + 1))
        running = Signal()
        with m.If(self.start):
            m.d.sync += [running.eq(1), row.eq(0)]
        with m.Elif(running):
            m.d.sync += row.eq(row + 1)
            with m.If(row == n - 1):
                m.d.sync += running.eq(0)
        # SOURCE_LATENCY cycles later: y[r], and a_L[r], d_L[r], read REGISTER_READ_LATENCY
        # cycles before (the row is delayed rather than the registers read: fewer bits)
        early = SOURCE_LATENCY - REGISTER_READ_LATENCY
        reading = delay(m, running, SOURCE_LATENCY, "reading")
        rows = delay(m, row, SOURCE_LATENCY, "got_row")
        m.d.comb += [self.y_addr.eq(self.y_base + row),
                     read_addr.eq(Mux(reading[early], rows[early], self.rd_addr))]
        got, got_row = reading[-1], rows[-1]
        rd_a, rd_d = self.rd_a, self.rd_d
        # a cycle later: the error a_L - y (registered), then lam_L = d_L (a_L - y)
        err = Signal(signed(af.width + 1))
        d_r = Signal(2)
        err_row = Signal(bits(n))
        writing = Signal()
        m.d.sync += [err.eq(rd_a - self.y_data), d_r.eq(rd_d), err_row.eq(got_row),
                     writing.eq(got & self.output_valid & self.sensitivity_on)]
        target, sat = saturate(derivative_scale(err, af.frac_bits, d_r,
                                                cfg.activations[-1], sf), sf)
        m.d.sync += [lam_valid.eq(writing), lam_index.eq(err_row), lam_value.eq(target)]
        m.d.comb += sat_lam_output.eq(writing & sat)
        # loss: |a_L - y|^2, three cycles later
        square = Signal(2 * af.width + 1)
        sq_valid = Signal()
        sq_valid2 = Signal()
        m.d.sync += [square.eq(err * err),
                     sq_valid.eq(got & self.output_valid), sq_valid2.eq(sq_valid)]
        m.d.comb += [self.loss_add.eq(square), self.loss_valid.eq(sq_valid2)]
        # correct: first largest output == first largest target. The comparison works a cycle
        # behind, on copies registered next to it: from the data memory's output through the
        # carry chain into the enables was the ECP5 preset's slowest path at 90.7 MHz
        cand = Signal()
        cand_row = Signal(bits(n))
        cand_a = Signal(signed(af.width))
        cand_y = Signal(signed(af.width))
        m.d.sync += [cand.eq(got), cand_row.eq(got_row), cand_a.eq(rd_a),
                     cand_y.eq(self.y_data)]
        best_a = Signal(signed(af.width))
        best_y = Signal(signed(af.width))
        arg_a = Signal(bits(n))
        arg_y = Signal(bits(n))
        with m.If(cand):
            with m.If((cand_row == 0) | (cand_a > best_a)):
                m.d.sync += [best_a.eq(cand_a), arg_a.eq(cand_row)]
            with m.If((cand_row == 0) | (cand_y > best_y)):
                m.d.sync += [best_y.eq(cand_y), arg_y.eq(cand_row)]
        decide = Signal()
        m.d.sync += decide.eq(cand & (cand_row == n - 1) & self.output_valid)
        m.d.comb += self.correct_add.eq(decide & (arg_a == arg_y))
        # busy until the last lam_L target is written inside the PEs
        in_flight = Signal(lam_write_latency(cfg, cfg.L))
        m.d.sync += in_flight.eq(Cat(lam_valid, in_flight[:-1]))
        m.d.comb += output_busy.eq(Cat(*reading).any() | writing | lam_valid | in_flight.any()
                                   | sq_valid | sq_valid2 | cand | decide)
