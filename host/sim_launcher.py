"""Start the simulated board as its own process and reach it through its pseudo-terminal.

The host never imports :mod:`dyadic.sim`: the board runs as ``python -m dyadic.sim.board``
and is spoken to over the same serial transport as a real board.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .device import DeviceError
from .link import SerialTransport

__all__ = ["launch_sim_board"]


def launch_sim_board(cfg, samples, timeout=900):
    """Returns ``(transport, stop)``. The first start for a configuration builds the RTL in
    Verilator (tens of seconds); later starts reuse the build."""
    work = Path(tempfile.mkdtemp(prefix="dyadic-sim-"))
    (work / "config.json").write_text(json.dumps(cfg.to_dict()))
    ready = work / "pty"
    log = open(work / "board.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "dyadic.sim.board", "--config", str(work / "config.json"),
         "--samples", str(samples), "--ready", str(ready), "--parent", str(os.getpid())],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop():
        if process.poll() is None:
            import signal
            os.killpg(process.pid, signal.SIGTERM)  # the board and its simulator child
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        log.close()

    started, told = time.monotonic(), False
    while not ready.exists():
        if not told and time.monotonic() - started > 3:
            print(f"dyadic: starting the simulated board for net "
                  f"{'-'.join(map(str, cfg.sizes))} (the first start for a network builds it in "
                  f"Verilator, about a minute; later starts reuse the build)", file=sys.stderr)
            told = True
        if process.poll() is not None:
            stop()
            raise DeviceError(f"the simulated board did not start (exit {process.returncode}); "
                              f"see {work / 'board.log'}")
        if time.monotonic() - started > timeout:
            stop()
            raise DeviceError(f"the simulated board was not ready after {timeout} s; see "
                              f"{work / 'board.log'}")
        time.sleep(0.05)
    return SerialTransport(ready.read_text().strip()), stop
