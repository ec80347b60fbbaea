"""Where a build's time and cells go, in the design's own words: the README's critical paths
and per-module counts come from here.

``python -m dyadic.boards.inspect path BUILD_DIR``: nextpnr's critical path, each step with the
Amaranth source line of the cell it reaches (nextpnr's own cell names mislead: they are
Yosys' names of whatever the packer merged; ECP5 builds: nextpnr-ice40's packed cells have
names of their own). ``python -m dyadic.boards.inspect modules
BUILD_DIR``: LUT4s and flip-flops per module, from the build's Yosys script re-run with the
hierarchy kept (``synth_* -noflatten``; nothing is optimised across modules, so the sum is a
little above the flat build's; iCE40 builds only: Yosys' ECP5 memory mapping fails on a
design with its hierarchy).
"""

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

from .build import NAME, tool_environment, logic_cells

__all__ = ["critical_path", "module_cells"]


def critical_path(build_dir):
    """``[(kind, delay_ns, cell_type, source)]`` of the slowest path of ``build_dir``'s
    build (``kind``: nextpnr's ``clk-to-q``, ``logic``, ``routing``, ``setup``)."""
    build_dir = Path(build_dir)
    report = json.loads((build_dir / f"{NAME}.report.json").read_text())
    netlist = json.loads((build_dir / f"{NAME}.json").read_text())
    cells = netlist["modules"][NAME]["cells"]
    steps = []
    for step in report["critical_paths"][0]["path"]:
        cell = cells.get(step["to"]["cell"], {})
        # the design's line where the cell has one, else the cell library's
        sources = cell.get("attributes", {}).get("src", "").split("|")
        source = next((s for s in sources if not s.startswith("/share/")), sources[0])
        steps.append((step["type"], step["delay"], cell.get("type", "?"), source))
    return steps


def module_cells(build_dir, env=None):
    """``{module: (luts, flip_flops)}`` with the hierarchy kept, from ``build_dir``'s Yosys
    script (a Yosys run of its own, about as long as the build's synthesis)."""
    build_dir = Path(build_dir)
    script = (build_dir / f"{NAME}.ys").read_text()
    script = re.sub(r"(synth_\w+)", r"\1 -noflatten", script)
    script = script.split("tee -q -o")[0] + "tee -q -o hierarchy.json stat -json\n"
    (build_dir / "hierarchy.ys").write_text(script)
    env = env or tool_environment()
    with open(build_dir / "hierarchy.log", "w") as log:
        done = subprocess.run([env["YOSYS"], "-q", "hierarchy.ys"], cwd=build_dir, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    if done.returncode:
        raise RuntimeError(f"Yosys could not synthesise {build_dir} with the hierarchy kept "
                           f"(see {build_dir / 'hierarchy.log'}; Yosys' ECP5 memory mapping fails with "
                           f"the hierarchy kept: inspect an iCE40 build)")
    stat = json.loads((build_dir / "hierarchy.json").read_text())
    counts = {}
    for module, info in stat["modules"].items():
        counts[module.lstrip("\\")] = logic_cells(info.get("num_cells_by_type", {}))
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dyadic.boards.inspect",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("path", "modules"))
    parser.add_argument("build_dir", type=Path)
    args = parser.parse_args(argv)
    if args.what == "path":
        for kind, delay, cell_type, source in critical_path(args.build_dir):
            print(f"{kind:9s} {delay:5.2f} ns  {cell_type:12s} {source}")
    else:
        try:
            counts = module_cells(args.build_dir)
        except RuntimeError as error:
            print(f"{parser.prog}: error: {error}", file=sys.stderr)
            return 2
        for module, (luts, ffs) in sorted(counts.items()):
            print(f"{luts:6d} LUT4 {ffs:6d} FF  {module}")


if __name__ == "__main__":
    sys.exit(main())
