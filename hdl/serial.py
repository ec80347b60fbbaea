"""Serial engine: every layer's relaxation work on one multiply-accumulate lane, layer after
layer, for FPGAs too small for a chain of processing elements per layer (the iCE40UP5K).

Where the systolic layers (:mod:`.layer`) give each layer its own processing elements,
sequencer and double-buffered registers, this engine has one lane (a weight's and a gradient's
multiplier) that every layer takes in turn, and keeps the registers ``a``, ``d``, ``lam``, the
weights and gradients and the skew buffers in block RAM. A relaxation step computes what the
systolic one does, every register's next value from the current ones, in phases over one
pipeline:

1. output: ``lam_L``'s next value from the current ``a_L``, ``d_L`` and ``y`` into a scratch
   area, the loss and the correct-prediction test;
2. forward, layers ``L`` down to 1, row by row: ``a_l, d_l <- f(W_l [a_{l-1}; 1])``, with
   ``G_l (+)= lam_l [a_{l-1}; 1]^T`` on the second multiplier (the skewed ``a_{l-1}``);
3. backward, layers 2 up to ``L``, column by column: ``lam_{l-1} <- d_{l-1} (W_l^T lam_l)``;
4. copy: ``lam_L`` <- the scratch area.

The registers are written in place, and this order keeps every read on a current value: a
layer reads ``a_{l-1}`` before the layer below writes it, the output unit reads ``a_L`` before
the forward pass writes it, each ``lam_l`` is read (by its gradient and its backward pass)
before the backward pass of the layer above writes it, and ``lam_L`` is written last. The
weight update sweeps the weights row by row with one xorshift32 generator per layer: the
golden model's order for layers of one PE of one lane (``NetConfig.engine``).

Pipeline, in cycles after a word is issued (``t0``): the data set's address at ``t0``, the
block RAMs' at ``t4`` (from registers), their data at ``t5``, registered at ``t6``; products
at ``t8``, accumulated at ``t8``; a gradient written at ``t9``; a row's or a column's
result completes at its *tail* word (one after its last multiply) at ``t8``, is blended by
:func:`~.pe.relaxation_write` from ``t10`` and written at ``t13``; an updated weight is
written at ``t12``.
"""

from amaranth import Module, Signal, Mux, Array, Const, Cat, signed, unsigned
from amaranth.lib import wiring, data
from amaranth.lib.wiring import In, Out

from .activation import ActivationUnit
from .arith import derivative_scale, saturate, const_mul, delay
from .lfsr import LFSR
from .multiplier import registered_product
from .layer import skew_depth
from .pe import bits, relaxation_write
from .ram import block_ram, PackedRAM

__all__ = ["SerialEngine", "DRAIN", "READBACK_LATENCY"]

OUT, FWD, BWD, COPY, UPD = range(5)
#: Cycles from a word's issue to its last write (``t13``), and a margin: a phase that
#: writes what the next one reads waits this long.
DRAIN = 15
#: Cycles from ``mem_row``, ``mem_col`` to ``w_rdata``, ``g_rdata``: the address registered,
#: the read, the data registered.
READBACK_LATENCY = 3


class _Stages:
    """Fields of a word delayed to later pipeline stages, each register chain only as long as
    its latest use (``stages(name, t)``: field ``name`` at stage ``t``). Call it outside
    ``m.If`` blocks: the registers it adds are assigned where it is called."""

    def __init__(self, m, fields, t0=0):
        self.m, self.t0 = m, t0
        self.chains = {name: [value] for name, value in fields.items()}

    def __call__(self, name, t):
        chain = self.chains[name]
        while len(chain) <= t - self.t0:
            stage = Signal.like(chain[-1], name=f"{name}_t{self.t0 + len(chain)}",
                                reset_less=True)
            self.m.d.sync += stage.eq(chain[-1])
            chain.append(stage)
        return chain[t - self.t0]


class SerialEngine(wiring.Component):
    """Every layer of ``cfg`` on one lane (``data_addr_bits``: the data set's address width).

    Per-layer controls are arrays indexed by ``layer - 1``; the others as
    :class:`~.layer.LayerEngine`'s (start, done, the step's and the update's shifts, the seed,
    sensitivity_on, output_valid, x_base/y_base and the data set's ports, the saturation,
    loss and correct events). The access bus names its layer in ``bus_layer`` (writes and
    weight reads) and ``rd_layer`` (register reads, with ``rd_index``); registers answer
    ``REGISTER_READ_LATENCY`` cycles after ``rd_index``, weights and gradients
    :data:`READBACK_LATENCY` after ``mem_row``.
    """

    def __init__(self, cfg, data_addr_bits):
        assert cfg.engine == "serial"
        self.cfg = cfg
        L, af, sf, mf = cfg.L, cfg.act_format, cfg.sens_format, cfg.master_format
        self.slot_bits = bits(skew_depth(cfg, 1) + 1)
        n_max = max(cfg.sizes[1:])
        super().__init__({
            "start": In(1), "update_start": In(1), "done": Out(1, init=1),
            "h_shift": In(4), "lr_shift": In(5), "seed": In(32), "seed_load": In(1),
            "sensitivity_on": In(1), "output_valid": In(1),
            "forward_valid": In(1).array(L), "backward_valid": In(1).array(L),
            "gradient_on": In(1).array(L), "overwrite": In(1).array(L),
            "slot_w": In(self.slot_bits).array(L), "slot_r": In(self.slot_bits).array(L),
            "x_base": In(data_addr_bits), "y_base": In(data_addr_bits),
            "x_addr": Out(data_addr_bits), "x_data": In(signed(af.width)),
            "y_addr": Out(data_addr_bits), "y_data": In(signed(af.width)),
            "bus_layer": In(bits(L)), "reg_we": In(1), "reg_kind": In(2),
            "reg_index": In(bits(n_max)), "reg_value": In(signed(32)),
            "rd_layer": In(bits(L)), "rd_index": In(bits(n_max)),
            "rd_a": Out(signed(af.width)), "rd_d": Out(unsigned(2)),
            "rd_lam": Out(signed(sf.width)),
            "mem_row": In(bits(n_max)), "mem_col": In(bits(max(cfg.row_length(l)
                                                               for l in range(1, L + 1)))),
            "w_we": In(1), "w_wdata": In(signed(mf.width)),
            "w_rdata": Out(signed(mf.width)), "g_rdata": Out(signed(cfg.gradient_acc_bits)),
            "sat_a": Out(1), "sat_lam": Out(1), "sat_w": Out(1),
            "loss_add": Out(2 * af.width + 1), "loss_valid": Out(1), "correct_add": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, L = self.cfg, self.cfg.L
        af, wf, sf, mf = cfg.act_format, cfg.weight_format, cfg.sens_format, cfg.master_format
        gw = cfg.gradient_acc_bits
        sizes = cfg.sizes
        n = [sizes[l] for l in range(1, L + 1)]            # rows of layer index k = l - 1
        n_in = [sizes[l - 1] for l in range(1, L + 1)]
        C = [cfg.row_length(l) for l in range(1, L + 1)]   # multiply words per row
        table = lambda values: Array(Const(v, bits(max(values) + 1)) for v in values)
        # block RAM layouts: registers of layer k at reg_base[k] (lam_L's scratch after all),
        # weights and gradients of layer k at wg_base[k], row-major
        reg_base = [sum(n[:k]) for k in range(L + 1)]
        wg_base = [sum(n[i] * C[i] for i in range(k)) for k in range(L + 1)]
        scratch = reg_base[L]
        reg_words, wg_words = reg_base[L] + n[-1], wg_base[L]
        one = Const(af.one, signed(af.width))

        regs = PackedRAM((af.width, 2), reg_words)          # a, d
        lams = block_ram(signed(sf.width), reg_words)        # lam, scratch
        # weights and gradients apart (read together, written apart): each is mapped as
        # the resource check counts it, where packed in one memory of 36 bits Yosys took a
        # block RAM more than the cheapest split
        w_mem, g_mem = block_ram(signed(mf.width), wg_words), block_ram(signed(gw), wg_words)
        m.submodules.ad_memory, m.submodules.lam_memory = regs.memory, lams
        m.submodules.weights, m.submodules.gradients = w_mem, g_mem
        w_rd, w_wr, g_rd, g_wr = (w_mem.read_port(), w_mem.write_port(), g_mem.read_port(),
                                  g_mem.write_port())
        lam_rd, lam_wr = lams.read_port(), lams.write_port()
        skew_layouts = [data.StructLayout({"a": signed(af.width)} | ({"d": 2} if k else {}))
                        for k in range(L)]
        skews = [block_ram(layout, (skew_depth(cfg, k + 1) + 1) * n_in[k])
                 for k, layout in enumerate(skew_layouts)]
        skew_rd, skew_wr = [], []
        for k, skew in enumerate(skews):
            m.submodules[f"skew{k}"] = skew
            skew_rd.append(skew.read_port())
            skew_wr.append(skew.write_port())

        # -- sequencer: one word a cycle ---------------------------------------------------
        # Each phase sweeps ``outer`` x ``inner``: a forward row is C multiply words and its
        # tail (the row's result), a backward column the layer's rows and its tail, an update
        # row C words, output and copy a word per row of layer L. The sweep's ends are
        # registered as it starts, so the tests of the last word compare registers.
        phase = Signal(3)
        layer = Signal(bits(L))
        inner = Signal(bits(max(max(C), max(n)) + 1))
        outer = Signal(bits(max(max(n), max(n_in))))
        inner_end, outer_end = Signal.like(inner), Signal.like(outer)
        issuing = Signal()
        drain = Signal(range(DRAIN + 1))
        ends = {FWD: (C, [r - 1 for r in n]), BWD: (n, [r - 1 for r in n_in]),
                UPD: ([c - 1 for c in C], [r - 1 for r in n]),
                OUT: ([n[-1] - 1] * L, [0] * L), COPY: ([n[-1] - 1] * L, [0] * L)}

        def sweep(new_phase, new_layer):
            inner_ends, outer_ends = ends[new_phase]
            m.d.sync += [phase.eq(new_phase), layer.eq(new_layer), inner.eq(0), outer.eq(0),
                         inner_end.eq(Array(inner_ends)[new_layer]),
                         outer_end.eq(Array(outer_ends)[new_layer])]

        last_inner, last_outer = inner == inner_end, outer == outer_end
        with m.FSM():
            with m.State("IDLE"):
                m.d.sync += self.done.eq(~(self.start | self.update_start))
                with m.If(self.start):
                    sweep(OUT, L - 1)
                    m.next = "RUN"
                with m.Elif(self.update_start):
                    sweep(UPD, 0)
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += issuing.eq(1)
                m.d.sync += inner.eq(Mux(last_inner, 0, inner + 1))
                with m.If(last_inner):
                    m.d.sync += outer.eq(outer + 1)
                with m.If(last_inner & last_outer):
                    with m.Switch(phase):
                        with m.Case(OUT):
                            sweep(FWD, layer)
                        with m.Case(FWD):   # layers L down to 1, then backward 2 up to L
                            with m.If(layer != 0):
                                sweep(FWD, layer - 1)
                            with m.Else():
                                if L > 1:
                                    sweep(BWD, 1)
                                else:
                                    m.next = "GAP"
                        with m.Case(BWD):
                            with m.If(layer != L - 1):
                                sweep(BWD, layer + 1)
                            with m.Else():
                                m.next = "GAP"
                        with m.Case(UPD):
                            with m.If(layer != L - 1):
                                sweep(UPD, layer + 1)
                            with m.Else():
                                m.next = "DRAIN"
                        with m.Case(COPY):
                            m.next = "DRAIN"
            with m.State("GAP"):   # the output unit's writes land before the copy reads them
                # (a small network's forward passes may be shorter than the pipeline)
                m.d.sync += drain.eq(drain + 1)
                with m.If(drain == DRAIN):
                    m.d.sync += drain.eq(0)
                    sweep(COPY, L - 1)
                    m.next = "RUN"
            with m.State("DRAIN"):
                m.d.sync += drain.eq(drain + 1)
                with m.If(drain == DRAIN):
                    m.d.sync += drain.eq(0)
                    m.next = "IDLE"

        is_fwd, is_bwd = phase == FWD, phase == BWD
        # a backward word's row is the inner index; output and copy have one "row" of words
        row = Mux(is_fwd | (phase == UPD), outer, inner)
        col = Mux(is_bwd, outer, inner)
        swept = is_fwd | is_bwd
        bias = is_fwd & (inner + 1 == inner_end)
        word = {
            "valid": issuing, "phase": phase, "layer": layer, "row": row, "col": col,
            "mac": (swept & ~last_inner) | (phase == UPD), "tail": swept & last_inner,
            "first": inner == 0, "bias": bias,
            "row0": is_fwd & (outer == 0) & ~last_inner & ~bias,
        }
        st = _Stages(m, word)
        # the data set's addresses at t0 (their data comes DataMemory.LATENCY = 5 later)
        m.d.comb += [self.x_addr.eq(self.x_base + col), self.y_addr.eq(self.y_base + row)]

        # -- block RAM addresses, registered at t4 from t3's word ---------------------------
        t3 = {k: st(k, 3) for k in word}
        k3, r3, c3 = t3["layer"], t3["row"], t3["col"]
        wg_addr = Signal(bits(wg_words))
        ad_addr = Signal(bits(reg_words))
        lam_addr = Signal(bits(reg_words))
        skew_addr = [Signal(bits(skew.depth), name=f"skew_addr{k}")
                     for k, skew in enumerate(skews)]
        reg_base_t = table(reg_base[:L])
        wg_row = Signal(bits(wg_words))   # wg_base[k] + row * C[k], kept with the row
        m.d.sync += wg_row.eq(Array(const_mul(r3, C[k]) + wg_base[k] for k in range(L))[k3])
        # the write address of a tail's result (a_l[i]; lam_{l-1}[j]; scratch; lam_L[i])
        reg_target = Signal(bits(reg_words))
        with m.Switch(t3["phase"]):
            with m.Case(OUT):
                m.d.sync += [ad_addr.eq(reg_base[L - 1] + r3), lam_addr.eq(reg_base[L - 1] + r3),
                             reg_target.eq(scratch + r3)]
            with m.Case(FWD):
                # operand a_{l-1}[j] (layers >= 2), the row's old a_l[i] at the tail; lam_l[i]
                m.d.sync += [ad_addr.eq(Mux(t3["tail"], reg_base_t[k3] + r3,
                                            reg_base_t[(k3 - 1)[:bits(L)]] + c3)),
                             lam_addr.eq(reg_base_t[k3] + r3),
                             reg_target.eq(reg_base_t[k3] + r3)]
            with m.Case(BWD):
                # lam_l[i], or at the column's tail the old lam_{l-1}[j]
                m.d.sync += [lam_addr.eq(Mux(t3["tail"], reg_base_t[(k3 - 1)[:bits(L)]] + c3,
                                             reg_base_t[k3] + r3)),
                             reg_target.eq(reg_base_t[(k3 - 1)[:bits(L)]] + c3)]
            with m.Case(COPY):
                m.d.sync += [lam_addr.eq(scratch + r3), reg_target.eq(reg_base[L - 1] + r3)]
        # the skewed a_{l-1}[j] (forward) or d_{l-1}[j] (backward) of the slot read
        for k in range(L):
            m.d.sync += skew_addr[k].eq(const_mul(self.slot_r[k], n_in[k]) + c3)
        wg_col = Signal.like(c3)   # a backward word's column too: W[i, j] either way
        m.d.sync += wg_col.eq(c3)
        m.d.comb += wg_addr.eq(wg_row + wg_col)

        # -- the access bus (idle only): registered, then into the block RAMs --------------
        bus_reg_we, bus_kind = Signal(), Signal(2)
        bus_reg_addr, bus_value = Signal(bits(reg_words)), Signal(signed(32))
        bus_w_we, bus_wdata = Signal(), Signal(signed(mf.width))
        bus_wg_addr, bus_rd_addr = Signal(bits(wg_words)), Signal(bits(reg_words))
        m.d.sync += [
            bus_reg_we.eq(self.reg_we), bus_kind.eq(self.reg_kind), bus_value.eq(self.reg_value),
            bus_reg_addr.eq(reg_base_t[self.bus_layer] + self.reg_index),
            bus_w_we.eq(self.w_we), bus_wdata.eq(self.w_wdata),
            bus_wg_addr.eq(Array(const_mul(self.mem_row, C[k]) + wg_base[k]
                                 for k in range(L))[self.bus_layer] + self.mem_col),
            bus_rd_addr.eq(reg_base_t[self.rd_layer] + self.rd_index)]
        running = ~self.done
        m.d.comb += [regs.read.addr.eq(Mux(running, ad_addr, bus_rd_addr)),
                     lam_rd.addr.eq(Mux(running, lam_addr, bus_rd_addr)),
                     w_rd.addr.eq(Mux(running, wg_addr, bus_wg_addr)),
                     g_rd.addr.eq(Mux(running, wg_addr, bus_wg_addr))]
        for k in range(L):
            m.d.comb += skew_rd[k].addr.eq(skew_addr[k])
        # -- t5: block RAM data, registered at t6 -------------------------------------------
        t5 = {k: st(k, 5) for k in ("valid", "phase", "layer", "bias", "row0")}
        w6, g6 = Signal(signed(mf.width)), Signal(signed(gw))
        a6, d6, lam6 = Signal(signed(af.width)), Signal(2), Signal(signed(sf.width))
        operand6, y6 = Signal(signed(af.width)), Signal(signed(af.width))
        skew_a6, skew_d6 = Signal(signed(af.width)), Signal(2)
        ad_word = regs.read.data
        m.d.sync += [w6.eq(w_rd.data), g6.eq(g_rd.data),
                     a6.eq(regs.field(ad_word, 0)), d6.eq(regs.field(ad_word, 1)),
                     lam6.eq(lam_rd.data), y6.eq(self.y_data),
                     operand6.eq(Mux(t5["bias"], one,
                                     Mux(t5["layer"] == 0, self.x_data,
                                         regs.field(ad_word, 0)))),
                     skew_a6.eq(Array(r.data.a for r in skew_rd)[t5["layer"]]),
                     skew_d6.eq(Array(r.data.d if k else Const(0, 2)
                                      for k, r in enumerate(skew_rd))[t5["layer"]])]
        # the access bus's answers (idle: the block RAMs read its address): weights and
        # gradients the data registered (READBACK_LATENCY), registers a cycle later
        # (REGISTER_READ_LATENCY)
        m.d.comb += [self.w_rdata.eq(w6), self.g_rdata.eq(g6)]
        m.d.sync += [self.rd_a.eq(a6), self.rd_d.eq(d6), self.rd_lam.eq(lam6)]
        # t6: a forward pass's first row stores its operands (and d_{l-1}) in the skew buffer
        t6 = {k: st(k, 6) for k in ("valid", "phase", "layer", "row0", "col", "mac", "tail",
                                    "first", "bias")}
        for k in range(L):
            m.d.comb += [skew_wr[k].addr.eq(const_mul(self.slot_w[k], n_in[k]) + t6["col"]),
                         skew_wr[k].data.a.eq(operand6),
                         skew_wr[k].en.eq(t6["valid"] & t6["row0"] & (t6["layer"] == k))]
            if k:
                m.d.comb += skew_wr[k].data.d.eq(d6)

        # -- t6: the multipliers' operands --------------------------------------------------
        fwd6, bwd6, upd6 = t6["phase"] == FWD, t6["phase"] == BWD, t6["phase"] == UPD
        same_slot = Array(self.slot_r[k] == self.slot_w[k] for k in range(L))[t6["layer"]]
        lam_row = Signal(signed(sf.width))   # the forward row's lam_l[i], read at its first word
        lam_now = Mux(t6["first"], lam6, lam_row)
        m.d.sync += lam_row.eq(lam_now)
        w_eff = w6[cfg.master_extra_bits:].as_signed()
        mul_a = Signal(signed(wf.width))
        mul_b = Signal(signed(max(af.width, sf.width)))
        m.d.comb += [mul_a.eq(Mux(t6["mac"] & (fwd6 | bwd6), w_eff, 0)),
                     mul_b.eq(Mux(bwd6, lam6, operand6))]
        product = registered_product(m, platform, mul_a, mul_b, "product")
        grad_operand = Mux(t6["bias"] | same_slot, operand6, skew_a6)
        grad_product = registered_product(m, platform, lam_now, grad_operand, "grad_product")

        # -- t8: accumulate, and the gradient's sum (written at t9) -------------------------
        t8 = {k: st(k, 8) for k in ("valid", "phase", "layer", "mac", "first", "tail")}
        acc_width = max(max(cfg.forward_acc_bits(l), cfg.backward_acc_bits(l))
                        for l in range(1, L + 1))
        acc = Signal(signed(acc_width))
        with m.If(t8["mac"] & ((t8["phase"] == FWD) | (t8["phase"] == BWD))):
            m.d.sync += acc.eq(Mux(t8["first"], 0, acc) + product)
        _, g7, g8 = delay(m, g6, 2, "g")
        g_sum, g_we = Signal(signed(gw)), Signal()
        gradient_on = Array(self.gradient_on)[t8["layer"]]
        overwrite = Array(self.overwrite)[t8["layer"]]
        m.d.sync += [g_sum.eq(Mux(overwrite, 0, g8) + grad_product),
                     g_we.eq(t8["valid"] & t8["mac"] & (t8["phase"] == FWD) & gradient_on)]
        wg_addr_at = _Stages(m, {"wg_addr": wg_addr}, t0=4)

        # -- the update: t7 G + r, t8-t9 the shift, t10 W - delta, t11 saturated, written t12
        stochastic = cfg.rounding == "stochastic"
        shift, mask, half = Signal(6), Signal(33), Signal(33)
        m.d.sync += [shift.eq(cfg.gradient_frac - mf.frac_bits + self.lr_shift),
                     mask.eq((1 << shift) - 1), half.eq((1 << shift) >> 1)]
        base_shift = cfg.gradient_frac - mf.frac_bits
        fixed_shift = max(0, base_shift)
        rate_shift = Signal(6)
        m.d.sync += rate_shift.eq(base_shift - fixed_shift + self.lr_shift)
        lfsrs = []
        for k in range(L):
            lfsr = LFSR(k + 1, 0)
            m.submodules[f"lfsr{k}"] = lfsr
            m.d.comb += [lfsr.seed.eq(self.seed), lfsr.load.eq(self.seed_load),
                         lfsr.step.eq(t6["valid"] & upd6 & (t6["layer"] == k) & stochastic)]
            lfsrs.append(lfsr.state)
        t7_layer = st("layer", 7)
        offset = (Array(lfsrs)[t7_layer] & mask) if stochastic else half
        rounded, part, delta = (Signal(signed(gw + 1)), Signal(signed(gw + 1)),
                                Signal(signed(gw + 1)))
        w_new, new_w, w_sat = Signal(signed(gw + 2)), Signal(signed(mf.width)), Signal()
        m.d.sync += [rounded.eq(g7 + offset),
                     part.eq((rounded >> fixed_shift) >> rate_shift[:2]),
                     delta.eq(part >> Cat(Const(0, 2), rate_shift[2:])),
                     w_new.eq(delay(m, w6, 4, "w")[-1] - delta),
                     Cat(new_w, w_sat).eq(Cat(*saturate(w_new, mf)))]
        t12 = {k: st(k, 12) for k in ("valid", "phase")}
        w_we = t12["valid"] & (t12["phase"] == UPD)
        m.d.comb += self.sat_w.eq(w_we & w_sat)
        # a forward pass writes gradients; an update writes weights, the bus while idle
        g_address, w_address = wg_addr_at("wg_addr", 9), wg_addr_at("wg_addr", 12)
        m.d.comb += [g_wr.addr.eq(g_address), g_wr.data.eq(g_sum), g_wr.en.eq(g_we),
                     w_wr.addr.eq(Mux(w_we, w_address, bus_wg_addr)),
                     w_wr.data.eq(Mux(w_we, new_w, bus_wdata)), w_wr.en.eq(w_we | bus_w_we)]

        # -- tails at t8: a forward row's activation, a backward column's sensitivity -------
        k8 = t8["layer"]
        acts = []
        for k in range(L):
            unit = ActivationUnit(cfg.activations[k], acc_width, cfg.forward_frac, af)
            m.submodules[f"activation{k}"] = unit
            m.d.comb += unit.z.eq(acc)
            acts.append(unit)
        k9 = st("layer", 9)
        act_a, act_d, act_sat = Signal(signed(af.width)), Signal(2), Signal()
        m.d.sync += [act_a.eq(Array(u.a for u in acts)[k9]), act_d.eq(Array(u.d for u in acts)[k9]),
                     act_sat.eq(Array(u.saturated for u in acts)[k9])]
        # backward: d_{l-1} (W_l^T lam_l), rounded (t8), saturated (t9)
        skew_d8 = delay(m, skew_d6, 2, "skew_d")[-1]
        scaled = [derivative_scale(acc, cfg.backward_frac, skew_d8, cfg.activations[k - 1], sf)
                  if k else Const(0, 1) for k in range(L)]
        bwd_scaled = Signal(signed(max(len(v) for v in scaled) + 1))
        m.d.sync += bwd_scaled.eq(Array(scaled)[k8])
        bwd_target, bwd_sat = Signal(signed(sf.width)), Signal()
        m.d.sync += Cat(bwd_target, bwd_sat).eq(Cat(*saturate(bwd_scaled, sf)))

        # -- the output unit: t6 a_L, d_L, y; t7 the error; t8 scaled; t9 saturated --------
        err, d7, y7, a7 = (Signal(signed(af.width + 1)), Signal(2), Signal(signed(af.width)),
                           Signal(signed(af.width)))
        m.d.sync += [err.eq(a6 - y6), d7.eq(d6), y7.eq(y6), a7.eq(a6)]
        out_value = derivative_scale(err, af.frac_bits, d7, cfg.activations[-1], sf)
        out_scaled = Signal(out_value.shape())
        m.d.sync += out_scaled.eq(out_value)
        out_target, out_sat = Signal(signed(sf.width)), Signal()
        m.d.sync += Cat(out_target, out_sat).eq(Cat(*saturate(out_scaled, sf)))
        t7 = {k: st(k, 7) for k in ("valid", "phase", "row")}
        out7 = t7["valid"] & (t7["phase"] == OUT)
        square, sq_valid = Signal(2 * af.width + 1), Signal()
        m.d.sync += [square.eq(err * err), sq_valid.eq(out7 & self.output_valid)]
        m.d.comb += [self.loss_add.eq(square), self.loss_valid.eq(sq_valid)]
        # correct: first largest output == first largest target
        best_a, best_y = Signal(signed(af.width)), Signal(signed(af.width))
        arg_a, arg_y = Signal(bits(n[-1])), Signal(bits(n[-1]))
        with m.If(out7):
            with m.If((t7["row"] == 0) | (a7 > best_a)):
                m.d.sync += [best_a.eq(a7), arg_a.eq(t7["row"])]
            with m.If((t7["row"] == 0) | (y7 > best_y)):
                m.d.sync += [best_y.eq(y7), arg_y.eq(t7["row"])]
        decide = Signal()
        m.d.sync += decide.eq(out7 & (t7["row"] == n[-1] - 1) & self.output_valid)
        m.d.comb += self.correct_add.eq(decide & (arg_a == arg_y))

        # -- t10: the relaxation step's blend, written at t13 ------------------------------
        h_half = Signal(16)
        m.d.sync += h_half.eq((1 << self.h_shift) >> 1)
        t10 = {k: st(k, 10) for k in ("valid", "phase", "layer", "tail")}
        target_at = _Stages(m, {"reg_target": reg_target}, t0=4)
        old_at = _Stages(m, {"a": a6, "lam": lam6}, t0=6)
        # a forward row's a_l[i], d_l[i]
        a_valid = t10["valid"] & (t10["phase"] == FWD) & t10["tail"]
        a_we, a_index, a_value, (a_d, a_sat) = relaxation_write(
            m, "a", a_valid, target_at("reg_target", 10), old_at("a", 10), act_a,
            self.h_shift, h_half, af, (act_d, act_sat))
        a_layer = delay(m, t10["layer"], 3, "a_layer")[-1]
        m.d.comb += self.sat_a.eq(a_we & a_sat & Array(self.forward_valid)[a_layer])
        # sensitivities: a backward column's (when its sample is real), the output unit's
        # (into the scratch area: the old value where it does not write), the copy's
        bwd10, out10, copy10 = (t10["phase"] == BWD, t10["phase"] == OUT, t10["phase"] == COPY)
        writing = self.output_valid & self.sensitivity_on
        bwd_valid = Array(self.backward_valid)[t10["layer"]]
        out_target10, out_sat10 = (delay(m, out_target, 1, "out_target")[-1],
                                   delay(m, out_sat, 1, "out_sat")[-1])
        old_lam = old_at("lam", 10)
        lam_valid = t10["valid"] & ((bwd10 & t10["tail"] & bwd_valid) | out10 | copy10)
        lam_target = Mux(bwd10, bwd_target, Mux(out10 & writing, out_target10, old_lam))
        lam_sat = (bwd10 & bwd_sat) | (out10 & writing & out_sat10)
        lam_we, lam_index, lam_value, (lam_sat13,) = relaxation_write(
            m, "lam", lam_valid, target_at("reg_target", 10), old_lam, lam_target,
            self.h_shift, h_half, sf, (lam_sat,))
        m.d.comb += self.sat_lam.eq(lam_we & lam_sat13)

        # register writes: the step's, or the bus's while idle
        with m.If(a_we):
            m.d.comb += [regs.write.addr.eq(a_index), regs.write.data.eq(regs.word((a_value, a_d))),
                         regs.write.en.eq(regs.enable((Const(1), Const(1))))]
        with m.Else():
            m.d.comb += [regs.write.addr.eq(bus_reg_addr),
                         regs.write.data.eq(regs.word((bus_value, bus_value))),
                         regs.write.en.eq(regs.enable((bus_reg_we & (bus_kind == 0),
                                                       bus_reg_we & (bus_kind == 1))))]
        m.d.comb += [lam_wr.addr.eq(Mux(lam_we, lam_index, bus_reg_addr)),
                     lam_wr.data.eq(Mux(lam_we, lam_value, bus_value)),
                     lam_wr.en.eq(lam_we | (bus_reg_we & (bus_kind == 2)))]
        return m
