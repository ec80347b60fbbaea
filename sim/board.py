"""The simulated board: the accelerator's RTL in Verilator, reached through a pseudo-terminal
exactly as a real board is reached through its USB serial port.

    python -m dyadic.sim.board --config CFG.json --samples N --ready PATH

builds the RTL for the configuration (cached under ``~/.cache/dyadic/sim-board/<build>``),
then serves bytes until it is terminated; the pseudo-terminal's path is written to ``PATH``
once the board is ready. The command engine's byte streams are driven directly (one byte per
clock cycle), not through a UART's bit timing, so that a data set uploads in seconds.
"""

import argparse
import fcntl
import hashlib
import json
import os
import sys
from pathlib import Path

from dyadic.hdl.config import NetConfig
from dyadic.hdl.top import Accelerator, build_info

TOPLEVEL = "dyadic_accelerator"


def cache_dir(cfg, samples):
    """One build per configuration and Python environment: the simulator's makefiles name
    files of the environment (cocotb's), so clones with their own venv must not share one."""
    build = json.loads(build_info(cfg, samples))["build"]
    venv = hashlib.sha256(sys.prefix.encode()).hexdigest()[:8]
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return root / "dyadic" / "sim-board" / f"{build}-{venv}"


def main(argv=None):
    p = argparse.ArgumentParser(description="the simulated board")
    p.add_argument("--config", required=True, help="NetConfig JSON file")
    p.add_argument("--samples", type=int, required=True)
    p.add_argument("--ready", required=True, help="file to write the pty path into")
    p.add_argument("--simulator", default="verilator")
    p.add_argument("--parent", type=int, default=0, help="exit when this process is gone")
    args = p.parse_args(argv)
    cfg = NetConfig.from_dict(json.loads(Path(args.config).read_text()))
    from .runner import run_cocotb, build
    directory = cache_dir(cfg, args.samples)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "build.lock", "w") as lock:  # one build per directory at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        build(args.simulator, Accelerator(cfg, args.samples), directory, TOPLEVEL, reuse=True)
    run_cocotb(args.simulator, cfg, args.samples, directory, test_module="dyadic.sim.board_tb",
               design=Accelerator(cfg, args.samples), toplevel=TOPLEVEL, reuse=True,
               extra_env={"DYADIC_READY": str(Path(args.ready).resolve()),
                          "DYADIC_PARENT": str(args.parent)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
