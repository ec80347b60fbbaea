"""Bitstreams: the resource check, Yosys and nextpnr through Amaranth's build plan, the report.

The tools are the YoWASP builds from PyPI unless the user names others: ``tools="system"``
takes ``yosys``/``nextpnr-*``/``icepack``/``ecppack`` from PATH, and the variables Amaranth
reads (``YOSYS``, ``NEXTPNR_ICE40``, ``ICEPACK``, ``NEXTPNR_ECP5``, ``ECPPACK``) always win.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, asdict
from pathlib import Path

from .board import BoardError, shortfall, does_not_fit
from .pll import PLLError
from .resources import check_fits, SPRAM_WORDS, SPRAM_WIDTH
from .top import BoardTop, pll_for
from ..hdl.arith import KEPT_COPY

__all__ = ["BuildReport", "build", "bitstream_path", "tool_environment", "logic_cells", "NAME"]

NAME = "dyadic"
#: The design clock's net after synthesis, as nextpnr names it.
CLOCK_NET = "accelerator.clk"
TOOLS = {"YOSYS": "yosys", "NEXTPNR_ICE40": "nextpnr-ice40", "ICEPACK": "icepack",
         "NEXTPNR_ECP5": "nextpnr-ecp5", "ECPPACK": "ecppack"}
# nextpnr's utilisation names -> the report's
CELLS = {"ice40": {"luts": "ICESTORM_LC", "dsps": "ICESTORM_DSP", "ram": "ICESTORM_RAM",
                   "spram": "ICESTORM_SPRAM"},
         "ecp5": {"luts": "TRELLIS_COMB", "ffs": "TRELLIS_FF", "dsps": "MULT18X18D",
                  "ram": "DP16KD"}}


@dataclass
class BuildReport:
    """What one build reached. ``resources``: name -> ``[used, available]`` (``ram_bits`` in
    bits); ``seconds``: wall clock of synthesis, place and route and packing."""
    board: str
    net: str
    pes: str
    target_mhz: float
    fmax_mhz: float
    timing_met: bool
    resources: dict
    bitstream: str
    seconds: float
    build_dir: str
    seed: int = 1

    def to_dict(self):
        return asdict(self)

    @classmethod
    def load(cls, path):
        return cls(**json.loads(Path(path).read_text()))


def tool_environment(tools="yowasp"):
    """The environment for Amaranth's build script."""
    env = dict(os.environ)
    bindir = Path(sys.executable).parent
    for var, tool in TOOLS.items():
        if var in os.environ:
            continue
        if tools == "yowasp":
            env[var] = str(bindir / f"yowasp-{tool}") if (bindir / f"yowasp-{tool}").exists() \
                else f"yowasp-{tool}"
        else:
            env[var] = tool
    # the ULX3S platform asks for openFPGALoader even when only building
    env.setdefault("OPENFPGALOADER", "true")
    return env


def _missing_tools(env, family):
    need = ["YOSYS"] + (["NEXTPNR_ICE40", "ICEPACK"] if family == "ice40"
                        else ["NEXTPNR_ECP5", "ECPPACK"])
    return [env[v] for v in need if shutil.which(env[v]) is None]


def build(board, cfg, samples, clock_mhz, build_dir, tools="yowasp", log=None, seed=None):
    """Build ``cfg`` (``samples`` data-set capacity) for ``board`` at ``clock_mhz`` into
    ``build_dir``; return a :class:`BuildReport` (also written to ``report.json``). Raises
    :class:`BoardError` with a one-line reason when the design cannot fit or a tool fails.
    ``log``: a file object receiving the tools' output (default: ``build.log``); ``seed``:
    nextpnr's placement seed, by default the board's (on the ULX3S preset the post-route
    clock varied by up to a third with it: 57.8 to 79.2 MHz for one netlist; the iCE40
    preset at 99.7% fill is placed at some seeds, not at others)."""
    seed = board.seed if seed is None else seed
    check_fits(board, cfg, samples)
    try:
        pll = pll_for(board, clock_mhz)
    except PLLError as e:
        raise BoardError(str(e)) from None
    env = tool_environment(tools)
    missing = _missing_tools(env, board.family)
    if missing:
        raise BoardError(f"synthesis tools not found: {', '.join(missing)} "
                         f"(install the YoWASP tools with `make setup`, or name yours with "
                         f"YOSYS / NEXTPNR_* / *PACK)")
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    result = _run_tools(board, cfg, samples, pll, build_dir, env, log, seed, abc9=True)
    if result.returncode != 0 and _abc9_failed(board, build_dir):
        # should abc9 still trip an assertion (ABC_OPS_REINTEGRATE) or leave nets driven by
        # two flip-flops (nextpnr then stops), the classic ABC maps the design
        result = _run_tools(board, cfg, samples, pll, build_dir, env, log, seed, abc9=False)
    seconds = time.monotonic() - started
    stat = _read_json(build_dir / f"{NAME}.stat.json")
    if stat is not None:
        _check_logic(board, cfg, stat)
    if result.returncode != 0:
        _explain_failure(board, cfg, build_dir, result.returncode)
    report = _report(board, cfg, pll.fout_mhz, build_dir, stat, seconds, seed)
    (build_dir / "report.json").write_text(json.dumps(report.to_dict(), indent=2))
    return report


# Amaranth names the elements of array-shaped signals ``a_next[1]``, which is also how abc9
# names bit 1 of ``a_next``: the clash leaves nets driven by two flip-flops or trips an
# assertion when ABC's result is put back. The aliases are only names; made private, they go.
HIDE_ELEMENT_ALIASES = r"rename -hide w:*\[* i:* o:* %u %d"

# Amaranth writes synchronous read ports that return the old word on a read-write collision,
# which Yosys keeps with a bypass mux after the block RAM. The datapath's memories are marked
# ``no_rw_check`` (dyadic.hdl.ram): their ports are split into a read and a register here and
# merged again by synthesis, this time with the collision left undefined and no mux. (Read
# from Verilog, as the gate-level check does, the ports are merged that way in the first place.)
COLLISIONS_UNDEFINED = "memory_nordff a:no_rw_check"

# Amaranth's state machines keep their state in a register with an init value, and Yosys's
# fsm_detect leaves such registers alone: the control paths then decode binary states (the
# iCE40's slowest paths were the command engine's). Without the init value (the domain's
# reset, which the board wrapper holds until the PLL locks and the tests assert first, puts
# every machine in its first state) Yosys extracts them and encodes them one-hot.
# (Amaranth names a machine's state register ``fsm_state`` or ``<name>_state``.)
RECODE_FSMS = "setattr -unset init w:*_state"

# Registers that copy one value on purpose, each next to its own loads (dyadic.hdl.arith.
# kept_copy: a data-memory slice's address, a PE's register-read select): Yosys would merge
# identical registers into one, unless their cells are marked keep. (%a: a copy that drives
# a submodule's port may be named there, its own name then an alias. $adff: a kept register
# with a reset, such as a PE's pipeline stage, where the board's reset is asynchronous.)
KEEP_COPIES = f"setattr -set keep 1 w:*{KEPT_COPY}* %a %ci1 t:$dff t:$adff %u %i"

# synth_<family>'s map_luts step with the classic ABC instead of abc9
CLASSIC_LUT_MAPPING = {
    "ecp5": "techmap -map +/lattice/latches_map.v; abc -lut 4:7 -dress; clean; ",
    "ice40": ("techmap -map +/ice40/latches_map.v; abc -dress -lut 4; ice40_wrapcarry -unwrap; "
              "techmap -map +/ice40/ff_map.v; clean; opt_lut -tech ice40; "),
}


def _run_tools(board, cfg, samples, pll, build_dir, env, log, seed, abc9):
    """Amaranth's build script for ``board`` in ``build_dir``: Yosys, nextpnr, packing."""
    synth_opts, after_synth = board.synth_opts, ""
    if not abc9:
        synth_opts += " -run begin:map_luts"
        after_synth = (CLASSIC_LUT_MAPPING[board.family]
                       + f"synth_{board.family} -top {NAME} -run map_cells:; ")
    # single-port RAM cannot be initialised: on such boards the data set's memories start
    # undefined (the host uploads before any use) and their all-zero initialisers are dropped
    after_read = (r"delete *.x_mem/t:$meminit_v2 *.y_mem/t:$meminit_v2; "
                  if board.data_memory_attrs else "")
    after_read += (f"{HIDE_ELEMENT_ALIASES}; {COLLISIONS_UNDEFINED}; {RECODE_FSMS}; "
                   f"{KEEP_COPIES}")

    # nextpnr times the PLL's output for what the PLL makes unless a preference names the net
    # (the constraint Amaranth writes names one that synthesis renames, so it is ignored)
    preferences = ({"add_preferences": f'FREQUENCY NET "{CLOCK_NET}" '
                                       f'{pll.fout_mhz * board.timing_margin * 1e6:.0f} HZ;'}
                   if board.timing_margin != 1 else {})
    plan = board.platform().prepare(
        BoardTop(board, cfg, samples, pll), name=NAME, synth_opts=synth_opts, **preferences,
        script_after_read=after_read,
        script_after_synth=f"{after_synth}tee -q -o {NAME}.stat.json stat -json",
        nextpnr_opts=f"{board.nextpnr_opts} --seed {seed} --report {NAME}.report.json "
                     f"--timing-allow-fail")
    plan.extract(build_dir)
    for stale in (f"{NAME}.report.json", f"{NAME}.stat.json", "report.json", f"{NAME}.tim",
                  f"{NAME}.json", bitstream_path(board, build_dir).name):
        (build_dir / stale).unlink(missing_ok=True)
    with open(build_dir / "build.log", "w") as own_log:
        return subprocess.run(["sh", f"build_{NAME}.sh"], cwd=build_dir, env=env,
                              stdout=log or own_log, stderr=subprocess.STDOUT)


def _abc9_failed(board, build_dir):
    try:
        rpt = (build_dir / f"{NAME}.rpt").read_text()
    except OSError:
        return False
    tail = rpt[-4000:]
    return ("ABC_OPS_REINTEGRATE" in tail and "Assert" in tail
            or "multiple conflicting drivers" in rpt)


def bitstream_path(board, build_dir):
    """Where a build for ``board`` in ``build_dir`` writes its bitstream."""
    return Path(build_dir) / (f"{NAME}.bin" if board.family == "ice40" else f"{NAME}.bit")


def _read_json(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def logic_cells(cells_by_type):
    """``(LUT4s, flip-flops)`` among Yosys' ``num_cells_by_type`` (either family)."""
    luts = sum(n for t, n in cells_by_type.items() if t in ("SB_LUT4", "LUT4", "$lut"))
    ffs = sum(n for t, n in cells_by_type.items() if "DFF" in t or t in ("TRELLIS_FF",))
    return luts, ffs


def _stat_cells(stat):
    return logic_cells(stat["design"]["num_cells_by_type"] if "design" in stat else {})


def _check_logic(board, cfg, stat):
    """After synthesis: name the logic shortfall nextpnr would otherwise report cryptically."""
    luts, ffs = _stat_cells(stat)
    cap = board.capacity
    short = [shortfall(what, n, avail)
             for what, n, avail in (("LUT4s", luts, cap.luts), ("flip-flops", ffs, cap.ffs))
             if n > avail]
    if short:
        raise does_not_fit(board, cfg, short, " after synthesis")


def _explain_failure(board, cfg, build_dir, code):
    """A failed tool run in one line: cells that do not fit, else nextpnr's own error."""
    try:
        log = (build_dir / f"{NAME}.tim").read_text()
    except OSError:
        log = ""
    short = [shortfall(CELL_NAMES.get(cell, cell), used, avail)
             for cell, used, avail in overfull(log)]
    if short:
        raise does_not_fit(board, cfg, short)
    errors = [line for line in log.splitlines() if line.startswith("ERROR")]
    raise BoardError(f"the {board.name} build failed (exit {code})"
                     + (f": {errors[-1]}" if errors else "")
                     + f"; see {build_dir / 'build.log'} and {build_dir / (NAME + '.tim')}")


# nextpnr's cell types as the user knows them
CELL_NAMES = {"ICESTORM_LC": "logic cells", "TRELLIS_COMB": "LUT4s", "TRELLIS_FF": "flip-flops",
              "ICESTORM_RAM": "block RAMs", "DP16KD": "block RAMs", "ICESTORM_DSP": "DSPs",
              "MULT18X18D": "multipliers", "ICESTORM_SPRAM": "SPRAMs"}


def overfull(log):
    """``(cell type, used, available)`` of every line of nextpnr's device utilisation
    (``ICESTORM_LC:  7997/ 5280   151%``) that asks for more than the device has."""
    return [(cell, int(used), int(avail)) for cell, used, avail
            in re.findall(r"(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", log) if int(used) > int(avail)]


def _report(board, cfg, target_mhz, build_dir, stat, seconds, seed):
    nextpnr = _read_json(build_dir / f"{NAME}.report.json") or {}
    util = nextpnr.get("utilization", {})
    names = CELLS[board.family]
    used = lambda key: util.get(names[key], {}).get("used", 0)
    _, ffs = _stat_cells(stat or {})
    cap = board.capacity
    ram_bits = used("ram") * cap.ram_block_bits
    resources = {
        "luts": [used("luts"), cap.luts],
        "ffs": [used("ffs") if "ffs" in names else ffs, cap.ffs],
        "dsps": [used("dsps"), cap.dsps],
        "ram_bits": [ram_bits, cap.ram_blocks * cap.ram_block_bits],
    }
    if "spram" in names:
        resources["spram_bits"] = [used("spram") * SPRAM_WORDS * SPRAM_WIDTH,
                                   cap.data_memory_bits]
    fmax = min((c["achieved"] for c in nextpnr.get("fmax", {}).values()), default=0.0)
    return BuildReport(board=board.name, net=cfg.net_text, pes=cfg.pes_text,
                       target_mhz=round(target_mhz, 3), fmax_mhz=round(fmax, 2),
                       timing_met=fmax >= target_mhz, resources=resources,
                       bitstream=str(bitstream_path(board, build_dir)),
                       seconds=round(seconds, 1),
                       build_dir=str(build_dir), seed=seed)
