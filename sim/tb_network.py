"""cocotb testbench of the relaxation network, bit for bit against the golden model.

The configuration comes from the environment (set by ``tests/test_rtl.py``):
``DYADIC_CONFIG`` (``NetConfig.to_dict`` JSON), ``DYADIC_SAMPLES`` (data-set capacity of the
build) and ``DYADIC_SEED``.
"""

import json
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from dyadic.hdl.config import NetConfig
from dyadic.hdl.regmap import Op
from dyadic.sim import scenarios
from dyadic.sim.cocotb_bus import CocotbBus


def _setup():
    cfg = NetConfig.from_dict(json.loads(os.environ["DYADIC_CONFIG"]))
    seed = int(os.environ.get("DYADIC_SEED", "1"))
    return cfg, seed, int(os.environ["DYADIC_SAMPLES"])


async def _reset(dut):
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    for port in (dut.cmd__valid, dut.cmd__payload, dut.we, dut.re, dut.addr, dut.wdata):
        port.value = 0
    for _ in range(3):
        await FallingEdge(dut.clk)
    dut.rst.value = 0


@cocotb.test()
async def every_register_after_every_step(dut):
    """Random weights and random register contents: the exactness table, bit for bit."""
    cfg, seed, _ = _setup()
    await _reset(dut)
    rng = np.random.default_rng(seed)
    bus = CocotbBus(dut, random.Random(seed), max_idle=2)
    compared = await scenarios.trace_scenario(bus, cfg, rng, steps=2 * cfg.L + 2)
    assert compared == (2 * cfg.L + 2) * 3 * sum(cfg.sizes[1:])


@cocotb.test()
async def leaky_step_size(dut):
    """h = 1/2: every register after every step still equals the golden model's."""
    cfg, seed, _ = _setup()
    await _reset(dut)
    bus = CocotbBus(dut)
    await scenarios.trace_scenario(bus, cfg, np.random.default_rng(seed + 1), steps=2 * cfg.L + 3,
                                   h_shift=1)


@cocotb.test()
async def every_saturation_counted(dut):
    """Registers and weights saturated in every PE: the counters see every event."""
    cfg, seed, _ = _setup()
    await _reset(dut)
    await scenarios.saturation_scenario(CocotbBus(dut, random.Random(seed)), cfg,
                                        np.random.default_rng(seed + 3))


@cocotb.test()
async def pipelined_minibatch_training(dut):
    """Two epochs of pipelined SGD with stochastic rounding; commands offered while busy."""
    cfg, seed, samples = _setup()
    await _reset(dut)
    bus = CocotbBus(dut, random.Random(seed), max_idle=3)
    batch = max(1, samples // 3)
    await scenarios.train_scenario(bus, cfg, np.random.default_rng(seed + 2), samples, batch,
                                   lr_shift=2, seed=seed * 7919, epochs=2)
    # back-pressure: a command offered during a long one waits for it and then runs
    await bus.offer(op=Op.TRAIN, count=samples, batch=batch, lr_shift=2)
    await bus.offer(op=Op.CLEAR)
    assert bus.back_pressure_seen > 0
    await bus.wait_idle()
    status = await scenarios.read_status(bus)
    assert all(v == 0 for v in status.values())
