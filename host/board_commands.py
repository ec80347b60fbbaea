"""``dyadic build`` and ``dyadic program``: the board builder and programmer on the command line."""

import json
from pathlib import Path

from ..boards import BOARDS, BoardError, get_board
from ..boards.board import FORMAT_KEYS
from ..boards.build import build, bitstream_path, BuildReport
from ..boards.program import program

__all__ = ["add_board_commands", "preset_config", "BOARD_ERRORS"]

BOARD_ERRORS = (BoardError, )


def default_build_dir(board):
    return Path("build") / board.name


def preset_config(board, args, config_from):
    """The board's preset network, overridden by what the user typed. Activations, PEs and
    number formats go with the preset's network only; its rounding with any network."""
    preset = board.preset
    keys = ("rounding",) + (() if args.net is not None else
                            ("act", "pes", "mults", "engine", "master_bits", *FORMAT_KEYS))
    for key in keys:
        if getattr(args, key, None) is None and key in preset:
            setattr(args, key, preset[key])
    return config_from(args, net=args.net or preset["net"])


def cmd_build(args, config_from):
    board = get_board(args.board)
    cfg = preset_config(board, args, config_from)
    samples = args.samples or board.preset["samples"]
    out = Path(args.build_dir) if args.build_dir else default_build_dir(board)
    if not args.json:
        print(f"building net {cfg.net_text} (PEs {cfg.pes_text}, {samples} samples) for the "
              f"{board.name} at {args.clock or board.clock_mhz:g} MHz in {out} ...", flush=True)
    report = build(board, cfg, samples, args.clock or board.clock_mhz, out, tools=args.tools,
                   seed=args.seed)
    if args.json:
        print(json.dumps({k: v for k, v in report.to_dict().items()
                          if k not in ("build_dir", )}))
    else:
        print(format_report(report))
    if not report.timing_met:
        raise BoardError(f"timing not met: {report.fmax_mhz:.1f} MHz reached, "
                         f"{report.target_mhz:g} MHz wanted (try --clock "
                         f"{int(report.fmax_mhz)}, or another --seed)")


def format_report(r: BuildReport):
    lines = [f"{r.board}: net {r.net}, PEs {r.pes}, built in {r.seconds:.0f} s (seed {r.seed})",
             f"  clock   {r.target_mhz:g} MHz target, {r.fmax_mhz:.1f} MHz reached: "
             f"{'met' if r.timing_met else 'NOT MET'}"]
    for name, (used, avail) in r.resources.items():
        lines.append(f"  {name:<10} {used:>9,} / {avail:>9,}  ({100 * used / avail:.0f}%)")
    lines.append(f"  bitstream {r.bitstream}")
    return "\n".join(lines)


def cmd_program(args):
    board = get_board(args.board)
    bitstream = args.bitstream or bitstream_path(board, default_build_dir(board))
    program(board, bitstream)
    if not args.json:
        print(f"flashed {bitstream} onto the {board.name}")
    else:
        print(json.dumps({"board": board.name, "bitstream": str(bitstream)}))


def add_board_commands(sub, add_config_options, config_from):
    p = sub.add_parser("build", help="bitstream, timing and utilisation report for a board")
    p.add_argument("--board", required=True, choices=sorted(BOARDS))
    p.add_argument("--clock", type=float, help="design clock in MHz (default: the board's)")
    p.add_argument("--samples", type=int, help="data-set capacity (default: the board's)")
    p.add_argument("--build-dir", help="where the bitstream goes (default build/BOARD)")
    p.add_argument("--tools", choices=("yowasp", "system"), default="yowasp",
                   help="YoWASP tools from PyPI, or yosys/nextpnr from PATH "
                        "(YOSYS, NEXTPNR_*, *PACK always win)")
    p.add_argument("--seed", type=int,
                   help="nextpnr's placement seed: the clock reached varies with it "
                        "(default: the board's, one that meets its clock)")
    add_config_options(p, net_default=None, act_default=None)
    p.set_defaults(func=lambda args: cmd_build(args, config_from))

    p = sub.add_parser("program", help="flash a bitstream onto a board")
    p.add_argument("--board", required=True, choices=sorted(BOARDS))
    p.add_argument("--bitstream", help="default: the last `dyadic build` for the board")
    p.set_defaults(func=cmd_program)
