"""cocotb bench: clock cycles of the relaxation network in each mode, and simulator speed.

Writes a JSON object to ``DYADIC_MEASURE_OUT``; configuration as in :mod:`.tb_network`, plus
``DYADIC_BATCH``. Data and weights are random: the cycle counts do not depend on them.
"""

import json
import os
import time

import cocotb
import numpy as np

from dyadic.hdl.regmap import Op, Status, Space, address
from dyadic.sim import scenarios
from dyadic.sim.cocotb_bus import CocotbBus
from dyadic.sim.tb_network import _setup, _reset


@cocotb.test()
async def measure(dut):
    cfg, seed, samples = _setup()
    batch = int(os.environ["DYADIC_BATCH"])
    await _reset(dut)
    bus = CocotbBus(dut)
    rng = np.random.default_rng(seed)
    model = scenarios.random_model(cfg, rng)
    af = cfg.act_format
    X = af.quantise(rng.uniform(0, 1, (samples, cfg.sizes[0])))
    Y = af.quantise(np.eye(cfg.sizes[-1])[rng.integers(0, cfg.sizes[-1], samples)])
    await scenarios.load_weights(bus, cfg, model.weights)
    await scenarios.load_dataset(bus, cfg, X, Y)

    async def cycles_of(**command):
        await bus.command(op=Op.CLEAR)
        started = time.perf_counter()
        await bus.command(**command)
        seconds = time.perf_counter() - started
        return (await bus.read(address(Space.STATUS, 0, Status.CYCLES)),
                await bus.read(address(Space.STATUS, 0, Status.STEPS)), seconds)

    step, _, _ = await cycles_of(op=Op.RELAX, count=1)
    gradient, _, _ = await cycles_of(op=Op.RELAX, count=2 * cfg.L + 1, gradient=1)
    update, _, _ = await cycles_of(op=Op.UPDATE, lr_shift=cfg.lr_shift)
    epoch, steps, seconds = await cycles_of(op=Op.TRAIN, count=samples, batch=batch,
                                            lr_shift=cfg.lr_shift)
    multipliers = cfg.multipliers
    ideal = cfg.macs_per_sample() / multipliers
    result = {
        "net": "-".join(map(str, cfg.sizes)), "pes": list(cfg.pes), "mults": list(cfg.mults),
        "multipliers": multipliers,
        "batch": batch, "samples": samples,
        "cycles_per_step": step, "train_cycles": epoch, "train_steps": steps,
        "cycles_per_sample": epoch / samples, "ideal_cycles_per_sample": ideal,
        "utilisation": ideal / (epoch / samples),
        "batch1_step_cycles": gradient + update, "gradient_cycles": gradient,
        "update_cycles": update, "sim_cycles_per_s": epoch / seconds,
    }
    with open(os.environ["DYADIC_MEASURE_OUT"], "w") as f:
        json.dump(result, f)
