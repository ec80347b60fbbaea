"""Flashing a bitstream onto a board with its programming tool (iceprog, openFPGALoader)."""

import os
import shutil
import subprocess
from pathlib import Path

from .board import BoardError

__all__ = ["program"]


def program(board, bitstream):
    """Flash ``bitstream`` onto ``board``; a missing tool, file or board is a
    :class:`BoardError` saying which. The tool may be renamed with ``ICEPROG`` /
    ``OPENFPGALOADER``."""
    tool, *options = board.programmer
    tool = os.environ.get(tool.upper(), tool)
    bitstream = Path(bitstream)
    if not bitstream.is_file():
        raise BoardError(f"no bitstream at {bitstream}: build one with "
                         f"`dyadic build --board {board.name}`")
    if shutil.which(tool) is None:
        package = "fpga-icestorm" if "iceprog" in tool else "openfpgaloader"
        raise BoardError(f"the programming tool {tool} is not installed: install it (Debian: "
                         f"apt install {package}) to flash the {board.name}")
    result = subprocess.run([tool, *options, str(bitstream)], capture_output=True, text=True)
    if result.returncode != 0:
        said = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()[-1]
        raise BoardError(f"{tool} could not flash the {board.name} (is it plugged in?): {said}")
    return result.stdout
