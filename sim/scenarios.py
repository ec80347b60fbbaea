"""Check scenarios run against the RTL through an access bus, with the bit-exact golden model
as the scoreboard. The same scenarios drive amaranth.sim and cocotb (Icarus, Verilator): a bus
is any object with ``async write(addr, value)``, ``async read(addr) -> int`` (signed) and
``async command(**fields)`` (waits until the controller is idle again).

Every comparison is exact integer equality (``numpy.testing.assert_array_equal``).
"""

import numpy as np
from numpy.testing import assert_array_equal

from dyadic.hdl.regmap import Space, Status, Op, REGISTERS, address, col_bits
from dyadic.host import float_model
from dyadic.host.device_model import DeviceModel, SATURATION_COUNTERS

__all__ = ["random_model", "load_weights", "read_weights", "read_gradients", "read_registers",
           "write_registers", "load_dataset", "trace_scenario", "update_scenario",
           "train_scenario", "saturation_scenario"]


def random_model(cfg, rng):
    """A golden model with random LeCun weights and random biases."""
    model = DeviceModel(cfg)
    Ws, _ = float_model.lecun_init(cfg.sizes, rng)
    model.set_params(Ws, [rng.normal(scale=0.3, size=n) for n in cfg.sizes[1:]])
    return model


async def write_weight_row(bus, cfg, layer, row, values):
    cb = col_bits(cfg)
    for c, v in enumerate(values):
        await bus.write(address(Space.W, layer, (row << cb) | c), v)


async def load_weights(bus, cfg, weights):
    for l, w in enumerate(weights, 1):
        for r, values in enumerate(w):
            await write_weight_row(bus, cfg, l, r, values)


async def _read_matrix(bus, cfg, space):
    cb = col_bits(cfg)
    return [np.array([[await bus.read(address(space, l, (r << cb) | c))
                       for c in range(cfg.row_length(l))] for r in range(cfg.sizes[l])])
            for l in range(1, cfg.L + 1)]


async def read_weights(bus, cfg):
    return await _read_matrix(bus, cfg, Space.W)


async def read_gradients(bus, cfg):
    return await _read_matrix(bus, cfg, Space.G)


async def read_registers(bus, cfg):
    """``{"a": [a_1..a_L], "d": [...], "lam": [...]}`` as int arrays."""
    return {kind: [np.array([await bus.read(address(space, l, i))
                             for i in range(cfg.sizes[l])]) for l in range(1, cfg.L + 1)]
            for kind, space in REGISTERS.items()}


async def write_registers(bus, cfg, state):
    for kind, space in REGISTERS.items():
        for l in range(1, cfg.L + 1):
            for i, v in enumerate(state[kind][l - 1]):
                await bus.write(address(space, l, i), v)


async def load_dataset(bus, cfg, X, Y, first=0):
    n0, nL = cfg.sizes[0], cfg.sizes[-1]
    for k, (x, y) in enumerate(zip(X, Y), first):
        for i, v in enumerate(x):
            await bus.write(address(Space.X, 0, k * n0 + i), v)
        for i, v in enumerate(y):
            await bus.write(address(Space.Y, 0, k * nL + i), v)


async def read_status(bus):
    return {s: await bus.read(address(Space.STATUS, 0, s)) for s in Status}


def assert_saturations(status, model, kinds=tuple(SATURATION_COUNTERS)):
    """The device's saturation counters (``status``) equal the golden model's counts."""
    for kind in kinds:
        assert status[SATURATION_COUNTERS[kind]] == model.saturations[kind], kind


async def trace_scenario(bus, cfg, rng, steps=None, h_shift=0, sample=1, samples=2):
    """Random weights, random register contents; run the relaxation one step at a time and
    compare every register after every step, then the gradients of a gradient-mode run, and
    the saturation counters; then :func:`update_scenario`. Returns the number of registers
    compared."""
    model = random_model(cfg, rng)
    af = cfg.act_format
    X = af.quantise(rng.uniform(-1, 1, (samples, cfg.sizes[0])))
    Y = af.quantise(rng.uniform(-1, 1, (samples, cfg.sizes[-1])))
    start = model.random_state(rng)
    steps = steps or 2 * cfg.L + 1
    await load_weights(bus, cfg, model.weights)
    await load_dataset(bus, cfg, X, Y)
    await write_registers(bus, cfg, start)
    loaded = await read_registers(bus, cfg)
    for kind in ("a", "d", "lam"):
        for l in range(cfg.L):
            assert_array_equal(loaded[kind][l], start[kind][l], err_msg=f"loading {kind}_{l + 1}")
    await bus.command(op=Op.CLEAR)
    trajectory = model.relax(X[sample], Y[sample], start, steps, h_shift)
    reference = DeviceModel(cfg)
    reference.weights = model.weights
    exact = reference.gradient(X[sample], Y[sample])
    compared = 0
    rtl = [start]
    for s in range(1, steps + 1):
        await bus.command(op=Op.RELAX, count=1, sample=sample, h_shift=h_shift)
        got = await read_registers(bus, cfg)
        rtl.append(got)
        for kind in ("a", "d", "lam"):
            for l in range(cfg.L):
                assert_array_equal(got[kind][l], trajectory[s][kind][l],
                                   err_msg=f"{kind}_{l + 1} after step {s}")
                compared += got[kind][l].size
    if h_shift == 0 and steps >= 2 * cfg.L:
        # The exactness table, read off the RTL: a_l from step l, lam_l from step 2L + 1 - l.
        L = cfg.L
        for l in range(1, L + 1):
            for s in range(l, steps + 1):
                assert_array_equal(rtl[s]["a"][l - 1], exact["a"][l], err_msg=f"a_{l} step {s}")
            for s in range(2 * L + 1 - l, steps + 1):
                assert_array_equal(rtl[s]["lam"][l - 1], exact["lam"][l],
                                   err_msg=f"lam_{l} step {s}")
        if np.any(exact["lam"][1] != 0):
            assert not np.array_equal(rtl[2 * L - 1]["lam"][0], exact["lam"][1]), \
                "lam_1 already exact at step 2L - 1"
    status = await read_status(bus)
    assert status[Status.STEPS] == steps
    assert_saturations(status, model, ("activation", "sensitivity"))
    # a gradient from arbitrary registers: lam_l [a_{l-1}; 1]^T of the step's current
    # registers (a_0 = x), not yet backpropagation's; what a trace step's gradient takes, as
    # the earlier steps' a_{l-1} still sit in the skew memories
    await write_registers(bus, cfg, start)
    await bus.command(op=Op.RELAX, count=1, sample=sample, gradient=1)
    for l, (got, want) in enumerate(zip(await read_gradients(bus, cfg),
                                        reference.state_gradients(X[sample], start)), 1):
        assert_array_equal(got, want, err_msg=f"one-step gradient of layer {l}")
    # gradient mode: 2L + 1 steps from wherever the registers are, the last accumulating
    await bus.command(op=Op.RELAX, count=2 * cfg.L + 1, sample=sample, gradient=1)
    reference = model.gradient(X[sample], Y[sample])
    for l, (got, want) in enumerate(zip(await read_gradients(bus, cfg), reference["grads"]), 1):
        assert_array_equal(got, want, err_msg=f"gradient of layer {l}")
    got = await read_registers(bus, cfg)
    for l in range(1, cfg.L + 1):
        assert_array_equal(got["a"][l - 1], reference["a"][l])
        assert_array_equal(got["lam"][l - 1], reference["lam"][l])
    await update_scenario(bus, cfg, rng, model, reference["grads"])
    return compared


async def update_scenario(bus, cfg, rng, model, grads):
    """With ``grads`` in the device's gradient memories and ``model``'s weights in its weight
    memories: an UPDATE, then a weight written over the bus, each of which must leave the
    gradients as they were (a weight and its gradient share a memory word)."""
    seed = int(rng.integers(1, 2 ** 32))
    await bus.command(op=Op.SEED, seed=seed)
    model.seed(seed)
    model.update(grads)
    await bus.command(op=Op.UPDATE, lr_shift=cfg.lr_shift)
    for l, (got, want) in enumerate(zip(await read_weights(bus, cfg), model.weights), 1):
        assert_array_equal(got, want, err_msg=f"weights of layer {l} after an update")
    for l, (got, want) in enumerate(zip(await read_gradients(bus, cfg), grads), 1):
        assert_array_equal(got, want, err_msg=f"gradient of layer {l} after an update")
    l = cfg.L
    row = int(rng.integers(cfg.sizes[l]))
    model.weights[l - 1][row] = cfg.master_format.quantise(
        rng.uniform(-1, 1, cfg.row_length(l)))
    await write_weight_row(bus, cfg, l, row, model.weights[l - 1][row])
    assert_array_equal((await read_weights(bus, cfg))[l - 1], model.weights[l - 1])
    for l, (got, want) in enumerate(zip(await read_gradients(bus, cfg), grads), 1):
        assert_array_equal(got, want, err_msg=f"gradient of layer {l} after a weight write")


async def train_scenario(bus, cfg, rng, samples, batch, lr_shift, seed, epochs=1):
    """Pipelined mini-batch SGD epochs on the RTL against the golden model: every weight and
    the last mini-batch's gradients after every epoch, loss sum, correct count, sample and
    saturation counters."""
    import dataclasses
    cfg_k = dataclasses.replace(cfg, lr_shift=lr_shift)
    model = random_model(cfg_k, rng)
    af = cfg.act_format
    X = af.quantise(rng.uniform(-1, 1, (samples, cfg.sizes[0])))
    Y = af.quantise(np.eye(cfg.sizes[-1])[rng.integers(0, cfg.sizes[-1], samples)])
    await load_weights(bus, cfg, model.weights)
    await load_dataset(bus, cfg, X, Y)
    await bus.command(op=Op.SEED, seed=seed)
    model.seed(seed)
    for epoch in range(epochs):
        await bus.command(op=Op.CLEAR)
        model.saturations.clear()
        loss, correct = model.train_epoch(X, Y, batch)
        await bus.command(op=Op.TRAIN, count=samples, batch=batch, lr_shift=lr_shift)
        for l, (got, want) in enumerate(zip(await read_weights(bus, cfg), model.weights), 1):
            assert_array_equal(got, want, err_msg=f"weights of layer {l} after epoch {epoch}")
        for l, (got, want) in enumerate(zip(await read_gradients(bus, cfg),
                                            model.last_gradients), 1):
            assert_array_equal(got, want, err_msg=f"last batch's gradient of layer {l} "
                                                  f"after epoch {epoch}")
        status = await read_status(bus)
        assert status[Status.LOSS] == loss
        assert status[Status.CORRECT] == correct
        assert status[Status.SAMPLES] == samples
        assert status[Status.UPDATES] == -(-samples // batch)
        assert status[Status.STEPS] == sum(min(batch, samples - s) + 2 * cfg.L
                                           for s in range(0, samples, batch))
        assert_saturations(status, model)
    # inference over the data set with the trained weights: loss and correct count on chip
    await bus.command(op=Op.CLEAR)
    outputs = model.infer(X)
    await bus.command(op=Op.INFER, count=samples, batch=batch)
    status = await read_status(bus)
    assert status[Status.LOSS] == int(np.sum((outputs - Y) ** 2))
    assert status[Status.CORRECT] == int(np.sum(np.argmax(outputs, 1) == np.argmax(Y, 1)))
    assert status[Status.SAMPLES] == samples and status[Status.UPDATES] == 0
    assert status[Status.STEPS] == sum(min(batch, samples - s) + cfg.L + 1
                                       for s in range(0, samples, batch))
    assert [w.tolist() for w in await read_weights(bus, cfg)] == \
        [w.tolist() for w in model.weights]
    return status


async def saturation_scenario(bus, cfg, rng, batch=2):
    """Registers and weights driven past their formats' bounds in every PE, so that a
    saturation count missing a PE's events fails whatever the random draw; compares the
    saturation counters after a relaxation and after an update, and the weights.

    All weights at the largest master value, inputs at the largest activation, targets at the
    smallest. Once exact, ``a_l`` saturates at its largest value in every layer whose
    activation is unbounded (not hardtanh), and ``lam_l`` too if the layers above are
    unbounded as well (a hardtanh's derivative is 0 there). One update of ``batch``
    identical samples at ``eta = 1`` then pushes every weight but the biases below the
    smallest in those layers whose input saturates too. The scenario checks each of these
    on the golden model before it runs."""
    import dataclasses
    cfg = dataclasses.replace(cfg, lr_shift=0)
    af, sf, mf = cfg.act_format, cfg.sens_format, cfg.master_format
    L = cfg.L
    unbounded = [True] + [act.name != "hardtanh" for act in cfg.activations]   # a_0 = x
    model = DeviceModel(cfg)
    model.weights = [np.full_like(w, mf.raw_max) for w in model.weights]
    X = np.full((batch, cfg.sizes[0]), af.raw_max, dtype=np.int64)
    Y = np.full((batch, cfg.sizes[-1]), af.raw_min, dtype=np.int64)
    probe = DeviceModel(cfg)
    probe.weights = model.weights
    exact = probe.gradient(X[0], Y[0])
    for l in range(1, L + 1):
        assert not unbounded[l] or (exact["a"][l] == af.raw_max).all(), f"a_{l} in range"
        assert not all(unbounded[l:]) or (exact["lam"][l] == sf.raw_max).all(), \
            f"lam_{l} in range"
    await load_weights(bus, cfg, model.weights)
    await load_dataset(bus, cfg, X, Y)
    start = model.random_state(rng)
    await write_registers(bus, cfg, start)
    await bus.command(op=Op.CLEAR)
    steps = 2 * L + 1
    model.relax(X[0], Y[0], start, steps)
    await bus.command(op=Op.RELAX, count=steps, sample=0)
    status = await read_status(bus)
    assert_saturations(status, model, ("activation", "sensitivity"))
    await bus.command(op=Op.CLEAR)
    await bus.command(op=Op.SEED, seed=7)
    model.seed(7)
    model.saturations.clear()
    model.train_epoch(X, Y, batch)
    for l, w in enumerate(model.weights, 1):
        assert not (all(unbounded[l:]) and unbounded[l - 1]) or (w[:, :-1] == mf.raw_min).all(), \
            f"the update does not saturate layer {l}'s weights"
    await bus.command(op=Op.TRAIN, count=batch, batch=batch, lr_shift=0)
    for l, (got, want) in enumerate(zip(await read_weights(bus, cfg), model.weights), 1):
        assert_array_equal(got, want, err_msg=f"weights of layer {l} after the update")
    status = await read_status(bus)
    assert_saturations(status, model)
