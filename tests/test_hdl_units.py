"""amaranth.sim unit tests of the gateware blocks against the golden model's definitions."""

import numpy as np
import pytest
from amaranth import Module, Elaboratable
from amaranth.sim import Simulator
from numpy.testing import assert_array_equal

from dyadic.hdl.activation import ActivationUnit
from dyadic.hdl.config import NetConfig, Activation
from dyadic.hdl.fixed import SQ
from dyadic.hdl.lfsr import LFSR, xorshift32, seed_state, pe_constant
from dyadic.hdl.network import RelaxationNetwork
from dyadic.hdl.datamem import DataMemory, SINGLE_PORT_RAM
from dyadic.hdl.regmap import Status, Space, Op, address, col_bits
from dyadic.hdl.status import StatusCounters, ROUND, counter_width
from dyadic.hdl.pe import (ProcessingElement, OP_FORWARD, OP_BACKWARD, OP_UPDATE, WRITE_LATENCY,
                           BACKWARD_LATENCY, lane_pick_registered)
from dyadic.host.device_model import activate, DeviceModel
from dyadic.sim import scenarios
from dyadic.sim.amaranth_bus import AmaranthBus


def run(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_lfsr_follows_xorshift32_and_never_sticks_at_zero():
    dut = LFSR(layer=2, pe=3)
    seen = []

    async def bench(ctx):
        for seed in (12345, pe_constant(2, 3)):  # the second XORs to zero
            ctx.set(dut.seed, seed)
            ctx.set(dut.load, 1)
            await ctx.tick()
            ctx.set(dut.load, 0)
            assert ctx.get(dut.state) != seed_state(seed, 2, 3)   # registered first
            await ctx.tick()
            state = ctx.get(dut.state)
            assert state == seed_state(seed, 2, 3) != 0
            ctx.set(dut.step, 1)
            for _ in range(50):
                await ctx.tick()
                state = xorshift32(state)
                assert ctx.get(dut.state) == state
            ctx.set(dut.step, 0)
            seen.append(state)

    run(dut, bench)
    assert len(seen) == 2


@pytest.mark.parametrize("act", [Activation("relu"), Activation("leaky_relu", 3),
                                 Activation("hardtanh"), Activation("identity")])
def test_activation_unit_equals_the_golden_activation(act, rng):
    fmt, frac, width = SQ(3, 6), 14, 26
    z = np.concatenate([rng.integers(-2 ** 25, 2 ** 25, 300),  # saturating both ways
                        rng.integers(-2 ** 16, 2 ** 16, 300),  # around the kinks
                        [0, 1, -1, 1 << frac, -(1 << frac), (1 << frac) + 1]])
    want_a, want_d, _ = activate(act, z, frac, fmt)
    dut = ActivationUnit(act, width, frac, fmt)
    sats = 0

    async def bench(ctx):
        nonlocal sats
        for k, value in enumerate(z):   # one cycle of latency
            ctx.set(dut.z, int(value))
            await ctx.tick()
            assert ctx.get(dut.a) == want_a[k] and ctx.get(dut.d) == want_d[k], value
            sats += ctx.get(dut.saturated)

    run(dut, bench)
    expected = activate(act, z, frac, fmt)[2]
    assert sats == expected
    assert expected > 0 or act.name == "hardtanh"  # hardtanh's output cannot overflow SQ(3,6)


# learning-rate shifts with bits in both of the update shifter's stages (its low two bits,
# then the rest) and in each alone
@pytest.mark.parametrize("pe, mults, lr_shift", [(0, 1, 3), (1, 1, 6), (0, 2, 9), (1, 2, 4),
                                                 (0, 3, 13)])
def test_processing_element_forward_backward_gradient_update(rng, pe, mults, lr_shift):
    # Layer 1 of 3-5 with 2 PEs: PE 0 serves rows 0, 2, 4 (three folds), PE 1 rows 1, 3;
    # with M multipliers the folds go M at a time.
    cfg = NetConfig((3, 5), ("leaky_relu",), pes=(2,), mults=(mults,), lr_shift=lr_shift)
    model = DeviceModel(cfg)
    model.set_params([rng.uniform(-1, 1, (5, 3))], [rng.uniform(-.5, .5, 5)])
    rows, C = cfg.rows_of_pe(1, pe), cfg.row_length(1)
    groups = -(-len(rows) // mults)
    af, sf = cfg.act_format, cfg.sens_format
    x = af.quantise(rng.uniform(-1, 1, 3))
    x_skewed = af.quantise(rng.uniform(-1, 1, 3))   # the gradient's operand: another sample
    lam = sf.quantise(rng.uniform(-1, 1, 5))
    dut = ProcessingElement(cfg, 1, pe)
    W_eff = model.effective(1)
    out = {}

    class Chain(Elaboratable):
        # as in a layer: a word reaches ``ctl_early`` a cycle before ``ctl_in``
        def elaborate(self, platform):
            m = Module()
            m.submodules.pe = dut
            m.d.sync += dut.ctl_in.eq(dut.ctl_early)
            return m

    async def issue(ctx, op, fold, col, first, last, operand=0, grad_operand=None):
        gradient = grad_operand is not None
        ctx.set(dut.ctl_early, {"valid": 1, "op": op, "fold": fold, "col": col, "first": first,
                                "last": last, "operand": int(operand), "gradient": gradient,
                                "overwrite": gradient, "grad_operand": int(grad_operand or 0)})
        await ctx.tick()

    async def idle(ctx, cycles=WRITE_LATENCY):
        ctx.set(dut.ctl_early, {"valid": 0})
        for _ in range(cycles + 1):
            await ctx.tick()

    async def bench(ctx):
        for f, r in enumerate(rows):
            for c in range(C):
                ctx.set(dut.mem_fold, f)
                ctx.set(dut.mem_col, c)
                ctx.set(dut.w_wdata, int(model.weights[0][r, c]))
                ctx.set(dut.w_we, 1)
                await ctx.tick()
            ctx.set(dut.w_we, 0)
        operands = list(x) + [af.one]
        for f in range(groups):                         # forward, a fold group at a time
            for c in range(C):
                await issue(ctx, OP_FORWARD, f, c, c == 0, c == C - 1, operands[c])
        await idle(ctx)
        ctx.set(dut.commit, 1)
        await ctx.tick()
        ctx.set(dut.commit, 0)
        out["a"] = [ctx.get(dut.a[f]) for f in range(len(rows))]
        out["d"] = [ctx.get(dut.d[f]) for f in range(len(rows))]
        for f, r in enumerate(rows):  # trace-mode load of the sensitivities
            ctx.set(dut.reg_kind, 2)
            ctx.set(dut.reg_fold, f)
            ctx.set(dut.reg_value, int(lam[r]))
            ctx.set(dut.reg_we, 1)
            await ctx.tick()
        ctx.set(dut.reg_we, 0)
        out["psum"] = []
        for c in range(3):                              # backward, groups inside
            for f in range(groups):
                await issue(ctx, OP_BACKWARD, f, c, f == 0, f == groups - 1)
            await idle(ctx, BACKWARD_LATENCY - 1)   # the last word's psum_out, no later
            out["psum"].append(ctx.get(dut.psum_out))
        skewed = list(x_skewed) + [af.one]
        for f in range(groups):                         # forward again, with the gradient
            for c in range(C):
                await issue(ctx, OP_FORWARD, f, c, c == 0, c == C - 1, operands[c], skewed[c])
        await idle(ctx)
        ctx.set(dut.lr_shift, lr_shift)
        ctx.set(dut.seed, 99)
        ctx.set(dut.seed_load, 1)
        await ctx.tick()
        ctx.set(dut.seed_load, 0)
        for f in range(groups):                         # update
            for c in range(C):
                await issue(ctx, OP_UPDATE, f, c, c == 0, c == C - 1)
        await idle(ctx)
        out["w"] = []
        for f in range(len(rows)):
            row = []
            for c in range(C):
                ctx.set(dut.mem_fold, f)
                ctx.set(dut.mem_col, c)
                # the PE's address, the read, its register (and the lane's pick)
                await ctx.tick().repeat(3 + lane_pick_registered(cfg))
                row.append(ctx.get(dut.w_rdata))
            out["w"].append(row)

    run(Chain(), bench)
    a_all, d_all = model.forward_layer(1, x)
    assert_array_equal(out["a"], a_all[rows])
    assert_array_equal(out["d"], d_all[rows])
    # this PE's share of (W^T lam)[c]: the travelling partial sum with nothing upstream
    assert_array_equal(out["psum"], W_eff[rows, :3].T @ lam[rows])
    grads = [np.outer(lam, model.with_bias_input(x_skewed))]
    before = model.weights[0][rows].copy()
    model.seed(99)
    model.update(grads)
    assert (model.weights[0][rows] != before).all()   # every weight moved: the shift matters
    assert_array_equal(out["w"], model.weights[0][rows])


@pytest.mark.parametrize("net, act, pes, mults", [
    ("5-7-3", "leaky_relu,identity", "3,2", "1,1"),
    ("4-6-5-3", "hardtanh,relu,identity", "2,5,1", "1,1,1"),
    ("5-7-3", "relu,identity", "2,1", "3,2"),   # several multiplier lanes per PE, uneven groups
])
def test_layer_engines_in_the_network(net, act, pes, mults, rng):
    """The layer engines together, in amaranth.sim: trace steps and pipelined training."""
    cfg = NetConfig.from_strings(net, act, pes=pes, mults=mults, act_format="3.8", lr_shift=3)
    dut = RelaxationNetwork(cfg, samples=7)

    async def bench(ctx):
        bus = AmaranthBus(ctx, dut)
        assert await scenarios.trace_scenario(bus, cfg, rng) > 0
        await scenarios.train_scenario(bus, cfg, rng, samples=7, batch=3, lr_shift=3, seed=5)

    run(dut, bench)


@pytest.mark.parametrize("net, act, pes, mults", [
    ("3-9-6", "leaky_relu,identity", "9,6", "1,1"),   # groups of PEs: 4 + 4 + 1, 4 + 2
    ("4-10-5", "relu,identity", "5,5", "2,1"),
])
def test_every_pe_saturation_is_counted(net, act, pes, mults, rng):
    """Every PE saturates its activations, sensitivities and weights; the counters see all."""
    cfg = NetConfig.from_strings(net, act, pes=pes, mults=mults, act_format="3.8")
    dut = RelaxationNetwork(cfg, samples=2)

    async def bench(ctx):
        await scenarios.saturation_scenario(AmaranthBus(ctx, dut), cfg, rng)

    run(dut, bench)


def test_a_command_the_cycle_after_a_write_sees_it(rng):
    """Bus writes reach the PEs through registers of the layer's, cycles after the bus. A weight
    and a register of a layer's last PE, written last, must be there for a relaxation step the
    cycle after, and for a read the cycle after."""
    cfg = NetConfig.from_strings("4-8-3", "relu,identity", pes="8,1", act_format="3.8")
    dut = RelaxationNetwork(cfg, samples=1)
    model = scenarios.random_model(cfg, rng)
    X = cfg.act_format.quantise(rng.uniform(-1, 1, (1, 4)))
    Y = cfg.act_format.quantise(rng.uniform(-1, 1, (1, 3)))
    start = model.random_state(rng)
    row = 7   # row r of layer 1 lives in PE r % 8
    stale_w = [w.copy() for w in model.weights]
    stale_w[0][row, 0] = ~stale_w[0][row, 0]
    stale = {kind: [v.copy() for v in values] for kind, values in start.items()}
    stale["a"][0][row] = ~stale["a"][0][row]
    want = model.relax(X[0], Y[0], start, 1)[1]

    async def bench(ctx):
        bus = AmaranthBus(ctx, dut)
        await scenarios.load_weights(bus, cfg, stale_w)
        await scenarios.load_dataset(bus, cfg, X, Y)
        await scenarios.write_registers(bus, cfg, stale)
        await bus.write(address(Space.W, 1, row << col_bits(cfg)), model.weights[0][row, 0])
        await bus.write(address(Space.A, 1, row), start["a"][0][row])
        await bus.command(op=Op.RELAX, count=1, sample=0)
        got = await scenarios.read_registers(bus, cfg)
        for kind in ("a", "d", "lam"):
            for l in range(cfg.L):
                assert_array_equal(got[kind][l], want[kind][l], err_msg=f"{kind}_{l + 1}")
        # and a read the cycle after a write
        await bus.write(address(Space.A, 1, row), stale["a"][0][row])
        assert await bus.read(address(Space.A, 1, row)) == stale["a"][0][row]

    run(dut, bench)


@pytest.mark.parametrize("attrs", [{}, SINGLE_PORT_RAM], ids=["block_ram", "single_port_ram"])
@pytest.mark.parametrize("depth", [3, 11])
def test_data_memory_reads_every_word_latency_cycles_later(rng, depth, attrs):
    # banks of 4 words: depth 11 spans three banks (the last one short), depth 3 fits one;
    # block RAM banks are sliced, with their registers on the address side, single-port RAM
    # banks are not, with one on the output side: the same latency
    dut = DataMemory(8, depth, attrs, bank_words=4)
    values = rng.integers(-128, 128, depth)
    order = rng.permutation(np.repeat(np.arange(depth), 3))   # back-to-back reads, repeats
    seen = []

    async def bench(ctx):
        for address, value in enumerate(values):
            ctx.set(dut.addr, address)
            ctx.set(dut.wdata, int(value))
            ctx.set(dut.we, 1)
            await ctx.tick()
        ctx.set(dut.we, 0)
        for address in list(order) + [0] * DataMemory.LATENCY:
            ctx.set(dut.addr, int(address))
            await ctx.tick()
            seen.append(ctx.get(dut.data))

    run(dut, bench)
    # after the tick that follows address k, data holds the word asked for LATENCY - 1 ticks
    # earlier
    assert seen[DataMemory.LATENCY - 1:][:len(order)] == [int(values[a]) for a in order]


def test_status_counters_hold_every_event_once_settled(rng):
    # bursts of random events on every counter (on most cycles, so a counter's word is often
    # written while new events arrive), clears in between; after each burst the counters
    # settle and every one reads back as the Python sum of its events since the last clear
    widths = {Status.LOSS: 17, Status.SAT_ACTIVATION: 9, Status.SAT_WEIGHT: 3}
    dut = StatusCounters(widths)
    expected = {s: 0 for s in Status}
    bursts = []
    for burst in range(6):
        cycles = int(rng.integers(1, 40))
        events = [{s: int(rng.integers(0, 2 ** dut.event_widths[s]))
                   if rng.random() < 0.6 else 0 for s in Status} for _ in range(cycles)]
        bursts.append((burst in (2, 4), events))
    reads = []

    async def settle(ctx):
        for _ in range(3 * ROUND):   # bounded: settling takes at most a few rounds
            if ctx.get(dut.settled):
                return
            await ctx.tick()
        raise AssertionError(f"not settled {3 * ROUND} cycles after the last event")

    async def bench(ctx):
        await settle(ctx)   # the counters start cleared
        for clear, events in bursts:
            if clear:
                ctx.set(dut.clear, 1)
                await ctx.tick()
                ctx.set(dut.clear, 0)
                await ctx.tick()   # the clear lands (a cycle without events, as in the network)
            for cycle in events:
                for s, value in cycle.items():
                    ctx.set(getattr(dut.add, s.name.lower()), value)
                await ctx.tick()
            for s in Status:
                ctx.set(getattr(dut.add, s.name.lower()), 0)
            await settle(ctx)
            values = {}
            for s in Status:
                ctx.set(dut.raddr, int(s))
                await ctx.tick()
                values[s] = ctx.get(dut.rdata)
            reads.append(values)

    run(dut, bench)
    for (clear, events), values in zip(bursts, reads):
        if clear:
            expected = {s: 0 for s in Status}
        for cycle in events:
            for s, value in cycle.items():
                expected[s] = (expected[s] + value) % (1 << counter_width(s))
        assert values == expected
