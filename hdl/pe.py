"""Processing element: one weight row per fold, local registers, one time-shared multiplier.

PE ``p`` of layer ``l`` serves rows ``p, p + P, ...`` (its *folds*). It owns, per fold, the
master weight row and gradient-accumulator row (local memories, bias last) and the dyadic
registers ``a``, ``d``, ``lam`` (current and next, committed together). Control words arrive
from the previous PE (or the layer engine) and are forwarded one cycle later, so PE ``p`` works
on a column ``p`` cycles after PE 0: a systolic wavefront. Operations (one column per cycle):

* forward:  ``acc += W[f, col] * operand`` (operand = ``a_{l-1}[col]``, 1.0 for the bias);
  after the fold's last column ``a, d = f(acc)`` is written to the next registers;
* backward: ``psum_out = psum_in + sum_f W[f, col] * lam[f]`` - the partial sum of
  ``(W^T lam)[col]`` travels down the chain, nothing is transposed;
* gradient: ``G[f, col] (+)= lam[f] * operand``;
* update:   ``W[f, col] = sat(W - (G + r) >> s)`` with ``r`` from the PE's xorshift32.

Pipeline: c0 memory addresses, c1 memory data and operand select, c2 product, c3 accumulate /
write, c4 activation write-back.
"""

from amaranth import Module, Signal, Mux, Array, signed, unsigned
from amaranth.lib import wiring, data
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .activation import ActivationUnit
from .arith import saturate, blend
from .lfsr import LFSR

__all__ = ["ProcessingElement", "control_layout", "OP_FORWARD", "OP_BACKWARD", "OP_GRADIENT",
           "OP_UPDATE", "bits"]

OP_FORWARD, OP_BACKWARD, OP_GRADIENT, OP_UPDATE = range(4)


def bits(n):
    """Bits to count ``0 .. n-1`` (at least 1)."""
    return max(1, (n - 1).bit_length())


def control_layout(cfg, layer):
    """The control word that travels down a layer's PE chain."""
    folds = -(-cfg.sizes[layer] // cfg.pes[layer - 1])
    return data.StructLayout({
        "valid": 1, "op": 2, "fold": bits(folds), "col": bits(cfg.row_length(layer)),
        "first": 1, "last": 1, "overwrite": 1, "operand": signed(cfg.act_format.width)})


class ProcessingElement(wiring.Component):
    """PE ``pe`` of layer ``layer`` (1-based) of ``cfg``; see the module docstring.

    Attributes
    ----------
    ctl_in, ctl_out : control words (``control_layout``); ``ctl_out`` is ``ctl_in`` delayed 1.
    psum_in, psum_out : signed(backward_acc_bits)
        The travelling partial sum of the backward pass.
    a, d, lam : Out(array of folds)
        Current registers (read by neighbours and the debug port).
    lam_we, lam_fold, lam_target :
        Write a sensitivity target (already in ``sens_format``) into the next ``lam``,
        blended with step ``h = 2**-h_shift``.
    commit : In(1)
        Current registers <= next registers.
    reg_we, reg_kind, reg_fold, reg_value :
        Direct write of a current register (0: a, 1: d, 2: lam), for trace mode.
    mem_addr, w_we, w_wdata, w_rdata, g_rdata :
        Idle-time access to the weight and gradient memories (address ``fold * C + col``,
        data one cycle after the address).
    seed, seed_load : xorshift32 seeding (see :mod:`.lfsr`).
    sat_a, sat_lam, sat_w : saturation events this cycle.
    """

    def __init__(self, cfg, layer, pe):
        self.cfg, self.layer, self.pe = cfg, layer, pe
        self.folds = len(cfg.rows_of_pe(layer, pe))
        self.C = cfg.row_length(layer)
        af, sf, mf = cfg.act_format, cfg.sens_format, cfg.master_format
        F, C = self.folds, self.C
        ctl = control_layout(cfg, layer)
        super().__init__({
            "ctl_in": In(ctl), "ctl_out": Out(ctl),
            "psum_in": In(signed(cfg.backward_acc_bits(layer))),
            "psum_out": Out(signed(cfg.backward_acc_bits(layer))),
            "a": Out(data.ArrayLayout(signed(af.width), F)),
            "d": Out(data.ArrayLayout(unsigned(2), F)),
            "lam": Out(data.ArrayLayout(signed(sf.width), F)),
            "lam_we": In(1), "lam_fold": In(bits(F)), "lam_target": In(signed(sf.width)),
            "commit": In(1), "h_shift": In(4), "lr_shift": In(5),
            "reg_we": In(1), "reg_kind": In(2), "reg_fold": In(bits(F)),
            "reg_value": In(signed(32)),
            "mem_addr": In(bits(F * C)), "w_we": In(1), "w_wdata": In(signed(mf.width)),
            "w_rdata": Out(signed(mf.width)), "g_rdata": Out(signed(cfg.gradient_acc_bits)),
            "seed": In(32), "seed_load": In(1),
            "sat_a": Out(2), "sat_lam": Out(1), "sat_w": Out(1),
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
        with m.If(self.commit):
            m.d.sync += [self.a.eq(a_next), self.d.eq(d_next), self.lam.eq(lam_next)]
        with m.If(self.reg_we):
            with m.Switch(self.reg_kind):
                with m.Case(0):
                    m.d.sync += self.a[self.reg_fold].eq(self.reg_value)
                with m.Case(1):
                    m.d.sync += self.d[self.reg_fold].eq(self.reg_value)
                with m.Case(2):
                    m.d.sync += self.lam[self.reg_fold].eq(self.reg_value)

        # -- sensitivity write port ----------------------------------------------------------
        lam_value, lam_sat = blend(self.lam[self.lam_fold], self.lam_target, self.h_shift, sf)
        m.d.comb += self.sat_lam.eq(self.lam_we & lam_sat)
        with m.If(self.lam_we):
            m.d.sync += lam_next[self.lam_fold].eq(lam_value)

        # -- memories ------------------------------------------------------------------------
        m.submodules.weights = w_mem = Memory(shape=signed(mf.width), depth=F * C, init=[])
        m.submodules.gradients = g_mem = Memory(shape=signed(gw), depth=F * C, init=[])
        w_rd, w_wr = w_mem.read_port(), w_mem.write_port()
        g_rd, g_wr = g_mem.read_port(), g_mem.write_port()

        # -- pipeline control ----------------------------------------------------------------
        c0 = self.ctl_in
        c1, c2, c3 = Signal(ctl), Signal(ctl), Signal(ctl)
        m.d.sync += [self.ctl_out.eq(c0), c1.eq(c0), c2.eq(c1), c3.eq(c2)]
        mine = [Signal(name=f"mine{k}") for k in range(4)]
        for k, c in enumerate((c0, c1, c2, c3)):
            m.d.comb += mine[k].eq(c.valid & (c.fold < F))
        address = lambda c: (c.fold * C + c.col)[:bits(F * C)]

        m.d.comb += [w_rd.addr.eq(Mux(c0.valid, address(c0), self.mem_addr)),
                     g_rd.addr.eq(Mux(c0.valid, address(c0), self.mem_addr)),
                     self.w_rdata.eq(w_rd.data), self.g_rdata.eq(g_rd.data)]

        # c1: operands (the multiplier sees the master weight with its extra bits dropped)
        w_eff = w_rd.data[cfg.master_extra_bits:].as_signed()
        lam_f = Array(self.lam)[c1.fold] if F > 1 else self.lam[0]
        mul_a = Signal(signed(max(wf.width, sf.width)))
        mul_b = Signal(signed(max(af.width, sf.width)))
        m.d.sync += [
            mul_a.eq(Mux(mine[1], Mux(c1.op == OP_GRADIENT, lam_f, w_eff), 0)),
            mul_b.eq(Mux(c1.op == OP_BACKWARD, lam_f, c1.operand)),
        ]
        w2, g2, w3, g3 = (Signal(signed(mf.width)), Signal(signed(gw)),
                          Signal(signed(mf.width)), Signal(signed(gw)))
        m.d.sync += [w2.eq(w_rd.data), g2.eq(g_rd.data), w3.eq(w2), g3.eq(g2)]

        # c2: product; the update's rounding offset
        product = Signal(signed(mul_a.shape().width + mul_b.shape().width))
        m.d.sync += product.eq(mul_a * mul_b)
        m.submodules.lfsr = lfsr = LFSR(self.layer, self.pe)
        stochastic = cfg.rounding == "stochastic"
        m.d.comb += [lfsr.seed.eq(self.seed), lfsr.load.eq(self.seed_load),
                     lfsr.step.eq(mine[1] & (c1.op == OP_UPDATE) & stochastic)]
        shift = Signal(6)
        m.d.comb += shift.eq(cfg.gradient_frac - mf.frac_bits + self.lr_shift)
        mask = (1 << shift) - 1
        offset = (lfsr.state & mask) if stochastic else ((1 << shift) >> 1)
        delta = Signal(signed(gw + 1))
        m.d.sync += delta.eq((g2 + offset) >> shift)

        # c3: accumulate / write back
        acc = Signal(signed(cfg.forward_acc_bits(self.layer)))
        partial = Signal(signed(cfg.backward_acc_bits(self.layer)))
        finished, finished_fold = Signal(), Signal(bits(F))
        here = Mux(c3.first, 0, partial) + product
        new_w, w_sat = saturate(w3 - delta, mf)
        m.d.comb += [g_wr.addr.eq(address(c3)), w_wr.addr.eq(Mux(c3.valid, address(c3),
                                                                   self.mem_addr))]
        m.d.sync += finished.eq(0)
        with m.Switch(c3.op):
            with m.Case(OP_FORWARD):
                m.d.sync += acc.eq(Mux(c3.first, 0, acc) + product)
                with m.If(mine[3] & c3.last):
                    m.d.sync += [finished.eq(1), finished_fold.eq(c3.fold)]
            with m.Case(OP_BACKWARD):
                with m.If(c3.valid):
                    m.d.sync += partial.eq(here)
                    with m.If(c3.last):
                        m.d.sync += self.psum_out.eq(here + self.psum_in)
            with m.Case(OP_GRADIENT):
                m.d.comb += [g_wr.data.eq(Mux(c3.overwrite, 0, g3) + product),
                             g_wr.en.eq(mine[3])]
            with m.Case(OP_UPDATE):
                m.d.comb += [w_wr.data.eq(new_w), w_wr.en.eq(mine[3]),
                             self.sat_w.eq(mine[3] & w_sat)]
        with m.If(~c3.valid):
            m.d.comb += [w_wr.data.eq(self.w_wdata), w_wr.en.eq(self.w_we)]

        # c4: activation and write-back of a, d
        m.submodules.activation = act = ActivationUnit(
            cfg.activations[self.layer - 1], acc.shape().width, cfg.forward_frac, af)
        old_a = Array(self.a)[finished_fold] if F > 1 else self.a[0]
        a_value, a_sat = blend(old_a, act.a, self.h_shift, af)
        m.d.comb += [act.z.eq(acc), self.sat_a.eq(Mux(finished, act.saturated + a_sat, 0))]
        with m.If(finished):
            m.d.sync += [a_next[finished_fold].eq(a_value), d_next[finished_fold].eq(act.d)]
        return m
