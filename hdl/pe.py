"""Processing element: a weight row per fold, local registers, two multipliers per lane.

PE ``p`` of layer ``l`` serves rows ``p, p + P, ...`` (its *folds*). It owns, per fold, the
master weight row and gradient-accumulator row (bias last; a weight and its gradient share a
word of the lane's local memory, :class:`~.ram.PackedRAM`) and the dyadic
registers ``a``, ``d``, ``lam`` (current and next, committed together). Control words arrive
from the previous PE (or the layer engine) and are forwarded one cycle later, so PE ``p`` works
on a column ``p`` cycles after PE 0: a systolic wavefront. Operations (one column per cycle):

* forward:  ``acc += W[f, col] * operand`` (operand = ``a_{l-1}[col]``, 1.0 for the bias);
  after the fold's last column ``a, d = f(acc)`` is written to the next registers; with
  ``gradient`` set, the same word also accumulates the gradient on a second multiplier,
  ``G[f, col] (+)= lam[f] * grad_operand`` (the skewed ``a_{l-1}[col]``): one sweep over
  ``(f, col)`` reads the weight and the gradient word it needs;
* backward: ``psum_out = psum_in + sum_f W[f, col] * lam[f]`` - the partial sum of
  ``(W^T lam)[col]`` travels down the chain, nothing is transposed (the products taken into
  fabric registers first, at c3; the lanes' sum at c4, the groups' at c5, the chain's at c6);
* update:   ``W[f, col] = sat(W - (G + r) >> s)`` with ``r`` from the PE's xorshift32.

With ``M`` lanes per PE (``NetConfig.mults``) each control word covers a *group* of ``M``
folds: lane ``k`` works on fold ``g * M + k`` with its own two multipliers, weight and
gradient memory, accumulator, activation unit and xorshift32 generator; the backward
products of the group are added before joining the travelling sum. Pipeline: memory addresses
a cycle ahead (from ``ctl_early``), c0 memory data registered, c1 operand select, c2 products,
c3 accumulate, c4 gradient write (the update: c2 ``G + r``, c3-c4 the shift, c5
``W - delta``, c6 its saturation, c7 the write), c4-c9 activation write-back
(activation unit over two cycles, then :func:`relaxation_write`); a sensitivity
target is written :data:`LAM_LATENCY` cycles after it arrives (a cycle more with
:func:`pick_ahead`). The layer's drain covers all.
"""

from amaranth import Module, Signal, Mux, Array, Const, Cat, signed, unsigned
from amaranth.lib import wiring, data
from amaranth.lib.wiring import In, Out

from .activation import ActivationUnit
from .arith import saturate, const_mul, delay, kept_copy, KEPT_COPY
from .lfsr import LFSR
from .multiplier import registered_product
from .ram import PackedRAM

__all__ = ["ProcessingElement", "control_layout", "OP_FORWARD", "OP_BACKWARD", "OP_UPDATE", "bits",
           "WRITE_LATENCY", "BACKWARD_LATENCY", "LAM_LATENCY", "pick_ahead",
           "lane_pick_registered"]

OP_FORWARD, OP_BACKWARD, OP_UPDATE = range(3)

#: Cycles from a control word entering a PE to its last register or memory write (c9).
WRITE_LATENCY = 10
#: Cycles from a backward word entering a PE to its ``psum_out`` (written at c6).
BACKWARD_LATENCY = 7
#: Cycles from a sensitivity target on ``lam_*`` to its write into ``lam_next`` (one more in a
#: layer of several PEs: :func:`pick_ahead`).
LAM_LATENCY = 4


def pick_ahead(cfg, layer):
    """Whether the PEs of ``layer`` pick a fold's current ``a`` or ``lam`` a cycle before its
    use, in a register of their own: before the relaxation step's subtraction, and the
    multiplier's ``lam`` operand. In a layer of several PEs, spread over the chip, the fold
    multiplexer and its use in one cycle were the ECP5 64-64-10's slowest paths (6.4 ns of
    wire before the subtraction; the operand: 78.7 MHz, 89.3 picked ahead); a layer of one PE
    (the iCE40 preset's) keeps them together and saves the registers (110 of the UP5K's
    logic cells)."""
    return cfg.pes[layer - 1] > 1


def lane_pick_registered(cfg):
    """Whether each PE picks its lanes' read-back answers into a register of its own, a cycle
    after its memories' data is registered (:attr:`ProcessingElement.w_rdata`): in networks
    with a layer of several lanes per PE (all their PEs, so reads take the same time in
    each); with one lane everywhere the lane's register answers."""
    return max(cfg.mults) > 1


def relaxation_write(m, name, valid, index, old, target, h_shift, half, fmt, carry=()):
    """The write-back of one relaxation step, ``old + round((target - old) / 2**h)`` rounded
    half up (``half = 2**h >> 1``, a register), over registered stages: the difference, plus
    half, the shift, then the sum (written by the caller at the fourth edge). ``carry``:
    signals delayed alongside. Returns ``(valid, index, value, carried)`` of the write stage.

    No saturation: the step lands between ``old`` and ``target`` (a rounded fraction of the
    difference is no larger than the difference), both within ``fmt``."""
    v, i, o, x, c = valid, index, old, target - old, tuple(carry)
    for stage, step in enumerate((lambda x: x, lambda x: x + half, lambda x: x >> h_shift)):
        regs = (Signal(name=f"{name}_valid{stage}"), Signal.like(i, name=f"{name}_index{stage}"),
                Signal(signed(fmt.width), name=f"{name}_old{stage}"),
                Signal(signed(fmt.width + 2), name=f"{name}_diff{stage}"),
                tuple(Signal.like(s, name=f"{name}_carry{stage}_{n}") for n, s in enumerate(c)))
        m.d.sync += [regs[0].eq(v), regs[1].eq(i), regs[2].eq(o), regs[3].eq(step(x)),
                     *(r.eq(s) for r, s in zip(regs[4], c))]
        v, i, o, x, c = regs
    value = Signal(signed(fmt.width), name=f"{name}_value")
    m.d.comb += value.eq(o + x)
    return v, i, value, c


def bits(n):
    """Bits to count ``0 .. n-1`` (at least 1)."""
    return max(1, (n - 1).bit_length())


def groups(cfg, layer):
    """Fold groups a layer's sequencer issues: each PE's lanes work on ``M`` folds at once
    (fold ``g * M + k`` on lane ``k``)."""
    folds = -(-cfg.sizes[layer] // cfg.pes[layer - 1])
    return -(-folds // cfg.mults[layer - 1])


def stage_layout(cfg, layer):
    """A control word in a PE's pipeline once its operands are used: the first fields of
    :func:`control_layout`."""
    return data.StructLayout({
        "valid": 1, "op": 2, "fold": bits(groups(cfg, layer)),
        "col": bits(cfg.row_length(layer)),
        "first": 1, "last": 1, "gradient": 1, "overwrite": 1})


def control_layout(cfg, layer):
    """The control word that travels down a layer's PE chain (``fold``: the fold group;
    ``gradient``, ``overwrite``, ``grad_operand``: a forward word's gradient accumulation)."""
    return data.StructLayout({
        **stage_layout(cfg, layer).members,
        "operand": signed(cfg.act_format.width), "grad_operand": signed(cfg.act_format.width)})


class ProcessingElement(wiring.Component):
    """PE ``pe`` of layer ``layer`` (1-based) of ``cfg``; see the module docstring.

    Attributes
    ----------
    ctl_in, ctl_out : control words (``control_layout``); ``ctl_out`` is ``ctl_in`` delayed 1.
    ctl_early : the word ``ctl_in`` carries next cycle: the memories are addressed a cycle
        ahead, so their (slow) outputs go straight into registers.
    psum_in, psum_out : signed(backward_acc_bits)
        The travelling partial sum of the backward pass.
    a, d, lam : Out(array of folds)
        Current registers (read by neighbours and the debug port).
    lam_we, lam_fold, lam_target :
        Write a sensitivity target (already in ``sens_format``) into the next ``lam``,
        blended with step ``h = 2**-h_shift``.
    commit : In(1)
        Current registers <= next registers.
    h_shift, lr_shift, h_shift_out, lr_shift_out :
        The step's and the learning rate's shifts (constant during a command); ``*_out`` is
        the input a cycle later, for the next PE.
    reg_we, reg_kind, reg_fold, reg_value :
        Direct write of a register (0: a, 1: d, 2: lam) while idle, for trace mode: the
        current register holds it two cycles later.
    mem_fold, mem_col, w_we, w_wdata, w_rdata, g_rdata :
        Idle-time access to the weight and gradient rows (registered first: a write
        takes place a cycle later, read data comes three cycles after the address, four
        with :func:`lane_pick_registered`).
    seed, seed_load, seed_out, seed_load_out : xorshift32 seeding (see :mod:`.lfsr`); the
        generators take ``*_out``, the inputs a cycle later, for the next PE too.
    sat_a, sat_w : saturation events of the previous cycle, of the activation units and of
        the weight updates. (A relaxation step's write-back cannot saturate; the
        sensitivity targets saturate in the layer.)
    """

    def __init__(self, cfg, layer, pe):
        self.cfg, self.layer, self.pe = cfg, layer, pe
        self.pick_ahead = pick_ahead(cfg, layer)
        self.folds = len(cfg.rows_of_pe(layer, pe))
        self.C = cfg.row_length(layer)
        af, sf, mf = cfg.act_format, cfg.sens_format, cfg.master_format
        F, C = self.folds, self.C
        ctl = control_layout(cfg, layer)
        super().__init__({
            "ctl_in": In(ctl), "ctl_out": Out(ctl), "ctl_early": In(ctl),
            "psum_in": In(signed(cfg.backward_acc_bits(layer))),
            "psum_out": Out(signed(cfg.backward_acc_bits(layer))),
            "a": Out(data.ArrayLayout(signed(af.width), F)),
            "d": Out(data.ArrayLayout(unsigned(2), F)),
            "lam": Out(data.ArrayLayout(signed(sf.width), F)),
            "lam_we": In(1), "lam_fold": In(bits(F)), "lam_target": In(signed(sf.width)),
            "commit": In(1), "h_shift": In(4), "lr_shift": In(5),
            "h_shift_out": Out(4), "lr_shift_out": Out(5),
            "reg_we": In(1), "reg_kind": In(2), "reg_fold": In(bits(F)),
            "reg_value": In(signed(32)),
            "mem_fold": In(bits(F)), "mem_col": In(bits(C)),
            "w_we": In(1), "w_wdata": In(signed(mf.width)),
            "w_rdata": Out(signed(mf.width)), "g_rdata": Out(signed(cfg.gradient_acc_bits)),
            "seed": In(32), "seed_load": In(1), "seed_out": Out(32), "seed_load_out": Out(1),
            "sat_a": Out(bits(cfg.mults[layer - 1] + 1)),
            "sat_w": Out(bits(cfg.mults[layer - 1] + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, F, C = self.cfg, self.folds, self.C
        af, wf, sf, mf = cfg.act_format, cfg.weight_format, cfg.sens_format, cfg.master_format
        gw = cfg.gradient_acc_bits
        ctl = control_layout(cfg, self.layer)

        # -- registers: current (read) and next (written during a step) ----------------------
        a_next = Signal(data.ArrayLayout(signed(af.width), F))
        d_next = Signal(data.ArrayLayout(unsigned(2), F))
        lam_next = Signal(data.ArrayLayout(signed(sf.width), F))
        # A direct write goes into the next register and reaches the current one with a commit
        # of all of them a cycle later: while idle, next equals current (every step ends with
        # a commit, direct writes come only between steps), so the commit changes that one
        # register. Written straight into the current registers, it put a multiplexer on each
        # of their bits (238 ECP5 LUT4s in a 4-fold PE, 355 iCE40 LUT4s in a 10-fold one).
        reg_commit = Signal()
        m.d.sync += reg_commit.eq(self.reg_we)
        with m.If(self.commit | reg_commit):
            m.d.sync += [self.a.eq(a_next), self.d.eq(d_next), self.lam.eq(lam_next)]
        reg_we = [self.reg_we & (self.reg_kind == kind) for kind in range(3)]   # a, d, lam

        # -- local copies of the command's shifts (constant while a command runs): the
        # broadcast from the controller stays off the arithmetic paths. Each PE copies its
        # neighbour's (the layer chains them like the control words): copies of one broadcast
        # would be merged by Yosys into one register driving every PE (12.9 ns of wire in
        # the ECP5 64-64-10 build)
        h_shift, lr_shift = self.h_shift_out, self.lr_shift_out
        h_half = Signal(16)
        m.d.sync += [h_shift.eq(self.h_shift), lr_shift.eq(self.lr_shift),
                     h_half.eq((1 << h_shift) >> 1)]
        # the seed and its load travel the same way (a broadcast to every generator was the
        # ULX3S preset's slowest path once the others were gone); the first update comes
        # steps after the load
        m.d.sync += [self.seed_out.eq(self.seed), self.seed_load_out.eq(self.seed_load)]

        # -- sensitivity write port ----------------------------------------------------------
        # with pick_ahead, the target and the fold's current lam are registered first: the
        # fold's multiplexer and the step's subtraction are two paths (the current registers
        # change only at a commit, after the step's last write)
        if self.pick_ahead:
            lam_in_we, lam_in_fold = Signal(), Signal(bits(F))
            lam_in_old, lam_in_target = Signal(signed(sf.width)), Signal(signed(sf.width))
            m.d.sync += [lam_in_we.eq(self.lam_we), lam_in_fold.eq(self.lam_fold),
                         lam_in_old.eq(self.lam[self.lam_fold]),
                         lam_in_target.eq(self.lam_target)]
        else:
            lam_in_we, lam_in_fold = self.lam_we, self.lam_fold
            lam_in_old, lam_in_target = self.lam[self.lam_fold], self.lam_target
        lam_we, lam_fold, lam_value, _ = relaxation_write(
            m, "lam", lam_in_we, lam_in_fold, lam_in_old, lam_in_target, h_shift, h_half, sf)
        with m.If(lam_we | reg_we[2]):   # one data bus into the folds, not a mux per fold
            m.d.sync += lam_next[Mux(self.reg_we, self.reg_fold, lam_fold)].eq(
                Mux(self.reg_we, self.reg_value, lam_value))

        # -- pipeline control ----------------------------------------------------------------
        # Stage k of PE p holds the word stage k - 1 of PE p + 1 holds (the chain delays a
        # word a cycle per PE), so Yosys merged them: PE p's c6 was PE p + 5's copy, and the
        # weight memory's write address came from there (9.8 ns of wire in the ULX3S preset).
        # In a layer of several PEs each PE keeps its own stages; after c1 they drop the
        # operands, used at c1 only. The stages have no reset: they start invalid, and a reset
        # of six cycles or more flushes them, as the word entering c0 is reset (a board's
        # lasts until its PLL locks, or while the button is held). With one, the reduced ECP5
        # build, whose reset is a fabric net, missed 100 MHz: 9.2 ns of wire from the reset
        # synchroniser to a stage.
        c0 = self.ctl_in
        kept = f"_{KEPT_COPY}" if cfg.pes[self.layer - 1] > 1 else ""
        c1 = Signal(ctl, name=f"c1{kept}", reset_less=True)
        c2, c3, c4, c5, c6, c7 = (Signal(stage_layout(cfg, self.layer), name=f"c{n}{kept}",
                                         reset_less=True) for n in range(2, 8))
        m.d.sync += [self.ctl_out.eq(c0), c1.eq(c0), c2.eq(c1.as_value()[:len(c2.as_value())]),
                     c3.eq(c2), c4.eq(c3), c5.eq(c4), c6.eq(c5), c7.eq(c6)]

        # -- idle-time memory access: fold f lives in lane f % M at group f // M -------------
        # The access is registered here before the memories: its address arithmetic, between
        # the layer's copies and the block RAMs, was the ULX3S preset's slowest path once the
        # pipeline stages were kept (12.9 ns of wire). ``mem_lane``: a cycle after ``idle_lane``,
        # ``answer_lane`` another, when the lanes' c0 registers hold the word read.
        M = cfg.mults[self.layer - 1]
        lanes = [list(range(k, F, M)) for k in range(M)]
        lanes = [folds for folds in lanes if folds]
        lane_of = lambda fold: Array(Const(f % M, bits(M)) for f in range(F))[fold]
        mem_group = (Array(Const(f // M, bits(F)) for f in range(F))[self.mem_fold]
                     if F > 1 else Const(0, 1))
        idle_address = Signal(bits(len(lanes[0]) * C))   # lane 0 has the most groups
        idle_we, idle_wdata = Signal(), Signal(signed(mf.width))
        _, idle_lane, mem_lane, answer_lane = delay(
            m, lane_of(self.mem_fold) if F > 1 else Const(0, bits(M)), 3, "lane")
        m.d.sync += [idle_address.eq(const_mul(mem_group, C) + self.mem_col),
                     idle_we.eq(self.w_we), idle_wdata.eq(self.w_wdata)]
        w_rdata, g_rdata = [], []
        w1s, g1s = [], []   # the lanes' c0 registers, read back from while idle

        stochastic = cfg.rounding == "stochastic"
        # the update's shift and its rounding masks, registered (constant during a command)
        shift = Signal(6)
        mask = Signal(33)
        half = Signal(33)
        m.d.sync += [shift.eq(cfg.gradient_frac - mf.frac_bits + lr_shift),
                     mask.eq((1 << shift) - 1), half.eq((1 << shift) >> 1)]
        # the shift in two parts: a constant one (free wiring), then the learning rate's,
        # so the barrel shifter has one level fewer per lane
        base_shift = cfg.gradient_frac - mf.frac_bits
        fixed_shift = max(0, base_shift)
        # kept apart: with ``base_shift >= 0`` it is a copy of this PE's ``lr_shift_out``, the
        # next PE's input, and Yosys merged it with the next PE's copy, which then drove both
        # PEs' shifters
        rate_shift = kept_copy(m, (base_shift - fixed_shift + lr_shift)[:5 if base_shift >= 0
                                                                          else 6], "rate_shift")
        products, sats_a, sats_w = [], [], []
        finished = Signal()   # finished_group: the full group number
        finished_group = Signal.like(c3.fold)
        m.d.sync += finished.eq(0)
        with m.If((c3.op == OP_FORWARD) & c3.valid & c3.last):
            m.d.sync += [finished.eq(1), finished_group.eq(c3.fold)]

        for k, folds in enumerate(lanes):
            # lane k: the PE's folds k, k + M, ... at groups 0, 1, ...
            G = len(folds)
            # the lane's weight row and gradient row, word by word in one memory: read
            # together, written apart (24 + 40 bits: two ECP5 block RAMs, where apart the
            # gradient's 40 took two of its own)
            rows = PackedRAM((mf.width, gw), G * C)
            m.submodules[f"weights_gradients{k}"] = rows.memory
            mine = [Signal(name=f"mine{k}_{s}") for s in range(8)]
            for s_, c in enumerate((c0, c1, c2, c3, c4, c5, c6, c7)):
                m.d.comb += mine[s_].eq(c.valid & (c.fold < G))
            address = lambda group, col: (const_mul(group, C) + col)[:bits(G * C)]
            idle = idle_address[:bits(G * C)]
            early = self.ctl_early
            m.d.comb += rows.read.addr.eq(Mux(early.valid, address(early.fold, early.col), idle))
            w_rdata.append(rows.field(rows.read.data, 0))
            g_rdata.append(rows.field(rows.read.data, 1))
            # c0: the word's weight and gradient arrive and are registered
            w1 = Signal(signed(mf.width), name=f"w1_{k}")
            g1 = Signal(signed(gw), name=f"g1_{k}")
            m.d.sync += [w1.eq(w_rdata[-1]), g1.eq(g_rdata[-1])]
            w1s.append(w1)
            g1s.append(g1)

            # c1: operands (the multiplier sees the master weight with its extra bits dropped)
            w_eff = w1[cfg.master_extra_bits:].as_signed()
            if self.pick_ahead and F > 1:
                # picked a cycle ahead, from c0's fold (the current registers change only at
                # a commit): the fold multiplexer and the operand select are two paths
                lam_f = Signal(signed(sf.width), name=f"lam_f{k}")
                m.d.sync += lam_f.eq(Array(self.lam)[(const_mul(c0.fold, M) + k)[:bits(F)]])
            else:
                fold_now = const_mul(c1.fold, M) + k
                lam_f = Array(self.lam)[fold_now[:bits(F)]] if F > 1 else self.lam[0]
            # the weight's multiplier (forward and backward) and the gradient's: operands
            # registered at c1, products at c2
            mul_a = Signal(signed(wf.width), name=f"mul_a{k}")
            mul_b = Signal(signed(max(af.width, sf.width)), name=f"mul_b{k}")
            m.d.comb += [mul_a.eq(Mux(mine[1], w_eff, 0)),
                         mul_b.eq(Mux(c1.op == OP_BACKWARD, lam_f, c1.operand))]
            product = registered_product(m, platform, mul_a, mul_b, f"product{k}")
            grad_product = registered_product(m, platform, lam_f, c1.grad_operand,
                                              f"grad_product{k}")
            products.append(product)
            g2, w3, g3 = (Signal(signed(gw), name=f"g2_{k}"),
                          Signal(signed(mf.width), name=f"w3_{k}"),
                          Signal(signed(gw), name=f"g3_{k}"))
            w2 = Signal(signed(mf.width), name=f"w2_{k}")
            m.d.sync += [w2.eq(w1), g2.eq(g1), w3.eq(w2), g3.eq(g2)]

            # c2: the update's rounding offset from this lane's generator
            lfsr = LFSR(self.layer, self.pe * M + k)
            m.submodules[f"lfsr{k}"] = lfsr
            m.d.comb += [lfsr.seed.eq(self.seed_out), lfsr.load.eq(self.seed_load_out),
                         lfsr.step.eq(mine[1] & (c1.op == OP_UPDATE) & stochastic)]
            offset = (lfsr.state & mask) if stochastic else half
            rounded = Signal(signed(gw + 1), name=f"rounded{k}")   # c2: G + r
            # c3-c4: (G + r) >> s in two parts, the rate's low two bits then the rest: in one
            # cycle, the shift's select bits (each driving a level of the whole word) and
            # its levels were the ULX3S preset's slowest path (74.6 MHz)
            part = Signal(signed(gw + 1), name=f"part{k}")
            delta = Signal(signed(gw + 1), name=f"delta{k}")
            w4, w5 = Signal(signed(mf.width), name=f"w4_{k}"), Signal(signed(mf.width),
                                                                     name=f"w5_{k}")
            w_new = Signal(signed(gw + 2), name=f"w_new{k}")       # c5: W - delta
            m.d.sync += [rounded.eq(g2 + offset),
                         part.eq((rounded >> fixed_shift) >> rate_shift[:2]),
                         delta.eq(part >> Cat(Const(0, 2), rate_shift[2:])),
                         w4.eq(w3), w5.eq(w4), w_new.eq(w5 - delta)]

            # c4: gradient write-back, the sum registered (its carry chain into the block
            # RAM was the ULX3S preset's slowest path once, 12.6 ns); c6: the weight
            # saturated and registered (the saturation's test of the top bits, in front of a
            # block RAM placed far from its PE, was the two-lane preset's slowest path: 66.9
            # MHz); c7: weight write-back, its address computed a stage ahead. The next read
            # of either word is in a later pass, after the layer's drain.
            new_w, w_sat = Signal(signed(mf.width), name=f"new_w{k}"), Signal(name=f"w_sat{k}")
            m.d.sync += Cat(new_w, w_sat).eq(Cat(*saturate(w_new, mf)))
            g_address = Signal(bits(G * C), name=f"g_address{k}")
            g_sum, g_we = Signal(signed(gw), name=f"g_sum{k}"), Signal(name=f"g_we{k}")
            w_address = Signal(bits(G * C), name=f"w_address{k}")
            m.d.sync += [g_address.eq(address(c3.fold, c3.col)),
                         g_sum.eq(Mux(c3.overwrite, 0, g3) + grad_product),
                         g_we.eq(mine[3] & (c3.op == OP_FORWARD) & c3.gradient),
                         w_address.eq(address(c6.fold, c6.col))]
            # one write port: a forward pass writes gradients, an update weights and the bus
            # weights while the layer idles, never two of them in a cycle
            w_data, w_en = Signal(signed(mf.width), name=f"w_data{k}"), Signal(name=f"w_en{k}")
            sat_w = Signal(name=f"sat_w{k}")
            with m.If(c7.op == OP_UPDATE):
                m.d.comb += [w_data.eq(new_w), w_en.eq(mine[7]), sat_w.eq(mine[7] & w_sat)]
            with m.If(~c7.valid):
                m.d.comb += [w_data.eq(idle_wdata), w_en.eq(idle_we & (idle_lane == k))]
            sats_w.append(sat_w)
            m.d.comb += [
                rows.write.addr.eq(Mux(g_we, g_address, Mux(c7.valid, w_address, idle))),
                rows.write.data.eq(rows.word((w_data, g_sum))),
                rows.write.en.eq(rows.enable((w_en, g_we)))]

            # c3: forward accumulation; c4: activation and write-back of a, d
            acc = Signal(signed(cfg.forward_acc_bits(self.layer)), name=f"acc{k}")
            with m.If(c3.op == OP_FORWARD):
                m.d.sync += acc.eq(Mux(c3.first, 0, acc) + product)
            # c4-c5: activation unit; c6-c9: the step from the current a, written
            act = ActivationUnit(cfg.activations[self.layer - 1], acc.shape().width,
                                 cfg.forward_frac, af)
            m.submodules[f"activation{k}"] = act
            m.d.comb += act.z.eq(acc)
            fold_done = const_mul(finished_group, M) + k
            act_a = Signal(signed(af.width), name=f"act_a{k}")
            act_d, act_sat = Signal(2, name=f"act_d{k}"), Signal(name=f"act_sat{k}")
            done, fold = Signal(name=f"done{k}"), Signal(bits(F), name=f"fold{k}")
            # the fold finished a cycle ago: the activation unit's latency
            done_c5, fold_c5 = Signal(name=f"done_c5_{k}"), Signal(bits(F), name=f"fold_c5_{k}")
            m.d.sync += [done_c5.eq(finished & (finished_group < G)),
                         fold_c5.eq(fold_done[:bits(F)]),
                         act_a.eq(act.a), act_d.eq(act.d), act_sat.eq(act.saturated),
                         done.eq(done_c5), fold.eq(fold_c5)]
            # with pick_ahead, the fold's current a is picked a cycle ahead (the current
            # registers change only at a commit, after the step's last write)
            if self.pick_ahead and F > 1:
                current_a = Signal(signed(af.width), name=f"current_a{k}")
                m.d.sync += current_a.eq(Array(self.a)[fold_c5])
            else:
                current_a = Array(self.a)[fold] if F > 1 else self.a[0]
            done, fold, a_value, (d_value, act_sat) = relaxation_write(
                m, f"a{k}", done, fold, current_a, act_a, h_shift, h_half, af, (act_d, act_sat))
            sats_a.append(done & act_sat)
            # this lane's direct writes (its folds) share the write-back's data bus
            reg_here = (lane_of(self.reg_fold) == k) if M > 1 else Const(1)
            write_fold = Mux(self.reg_we, self.reg_fold, fold)
            with m.If(done | (reg_we[0] & reg_here)):
                m.d.sync += a_next[write_fold].eq(Mux(self.reg_we, self.reg_value, a_value))
            with m.If(done | (reg_we[1] & reg_here)):
                m.d.sync += d_next[write_fold].eq(Mux(self.reg_we, self.reg_value, d_value))

        # read back from the lanes' c0 registers (a block RAM's output is slow), their pick
        # registered: behind the block RAM's output, the lanes' multiplexer into one register
        # was the ULX3S preset's slowest path at 100 MHz (5.6 ns out of the block RAM, 6.7 ns
        # of wire, 79.1 MHz); from the c0 registers without one, the multiplexer then 9.2 ns
        # of wire to the layer's pick (74.2 MHz asked for 80)
        if lane_pick_registered(cfg):
            m.d.sync += [self.w_rdata.eq(Array(w1s)[answer_lane] if len(w1s) > 1 else w1s[0]),
                         self.g_rdata.eq(Array(g1s)[answer_lane] if len(g1s) > 1 else g1s[0])]
        else:
            m.d.comb += [self.w_rdata.eq(w1s[0]), self.g_rdata.eq(g1s[0])]
        m.d.sync += [self.sat_a.eq(sum(sats_a)), self.sat_w.eq(sum(sats_w))]

        # backward - this PE's share of (W^T lam)[col], summed over its lanes (c4) and fold
        # groups (c5), joins the partial sum travelling down the chain (c6): a carry chain a
        # cycle. The products are taken into fabric registers first (c3): straight from the
        # multipliers, 4-5.5 ns of wire from their column and the sums' two carry chains were
        # the ULX3S preset's slowest path (82.1 MHz two lanes, 86.9 one); with the lanes'
        # sum, the group's and the travelling sum in one cycle as two balanced levels, a
        # layer-2 PE's sum was still its slowest path (96.4 MHz, 7.4 ns of wire)
        taken = [Signal.like(p, name=f"backward_product{k}") for k, p in enumerate(products)]
        m.d.sync += [t.eq(p) for t, p in zip(taken, products)]
        lanes_sum = Signal(signed(cfg.backward_acc_bits(self.layer)))
        partial = Signal.like(lanes_sum)
        m.d.sync += lanes_sum.eq(balanced_sum(taken))
        with m.If((c5.op == OP_BACKWARD) & c5.valid):
            m.d.sync += partial.eq(Mux(c5.first, 0, partial) + lanes_sum)
        with m.If((c6.op == OP_BACKWARD) & c6.valid & c6.last):
            m.d.sync += self.psum_out.eq(partial + self.psum_in)
        return m


def balanced_sum(terms):
    """``sum(terms)`` as a tree of pairs, the first pair first (so sums of the same first
    terms share it): a carry chain per level rather than per term."""
    while len(terms) > 1:
        terms = [a + b for a, b in zip(terms[::2], terms[1::2])] + terms[len(terms) & ~1:]
    return terms[0]
