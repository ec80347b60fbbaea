"""Cycle counts and simulation speed of the RTL, measured in cocotb (see :mod:`.tb_measure`)."""

import json
import os
import tempfile
from pathlib import Path

from .runner import run_cocotb

__all__ = ["measure_cycles"]


def measure_cycles(cfg, sim="verilator", batch=32, batches=2, directory=None):
    """Dict of cycle figures for ``cfg`` (train epoch of ``batches`` batches of ``batch``)."""
    directory = Path(directory or tempfile.mkdtemp(prefix="dyadic-measure-"))
    out = directory / "measure.json"
    os.environ["DYADIC_BATCH"] = str(batch)
    os.environ["DYADIC_MEASURE_OUT"] = str(out)
    tests, failures = run_cocotb(sim, cfg, batch * batches, directory,
                                 test_module="dyadic.sim.tb_measure")
    if failures or not out.exists():
        raise RuntimeError(f"measurement failed: see {directory}/{sim}-test.log")
    result = json.loads(out.read_text())
    result["simulator"] = sim
    return result


def main(argv=None):
    """``python -m dyadic.sim.measure --net 64-16-10 --pes 8,2 [--mults 1,1] [--simulator icarus]``"""
    import argparse
    from dyadic.hdl.config import NetConfig
    p = argparse.ArgumentParser(description="cycle counts of the RTL in cocotb")
    p.add_argument("--net", default="64-16-10")
    p.add_argument("--act", default="leaky_relu,identity")
    p.add_argument("--pes", default=None)
    p.add_argument("--mults", default=None, help="multiplier lanes per PE, per layer")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--simulator", default="verilator")
    args = p.parse_args(argv)
    cfg = NetConfig.from_strings(args.net, args.act, pes=args.pes, mults=args.mults)
    print(json.dumps(measure_cycles(cfg, args.simulator, args.batch)))


if __name__ == "__main__":
    main()
