"""What the build needs to know about a board: its platform, clock, capacity and preset.

Each supported board is one small module (:mod:`.icebreaker`, :mod:`.ulx3s`) that builds a
:class:`Board` and calls :func:`register`; the builder, the resource check, the programmer and
the CLI read only this record.
"""

from dataclasses import dataclass

from ..hdl.config import NetConfig
from ..hdl.datamem import SINGLE_PORT_RAM

__all__ = ["Board", "Capacity", "BoardError", "register", "get_board", "BOARDS",
           "shortfall", "does_not_fit"]


class BoardError(ValueError):
    """A board request that cannot be met (unknown board, impossible clock, too large)."""


def shortfall(what, needed, available):
    """One resource that does not fit, for :func:`does_not_fit`."""
    return f"{what}: {needed} needed, {available} available ({needed - available} too many)"


def does_not_fit(board, cfg, short, when="",
                 fix="Use fewer PEs (--pes) or a smaller network"):
    """The one-line error for ``cfg`` not fitting ``board``: the ``short`` resources
    (``when``: at which stage it was found) and what to change."""
    return BoardError(f"net {cfg.net_text} with PEs {cfg.pes_text} does not fit the "
                      f"{board.name}{when}: " + "; ".join(short) + f". {fix}")


@dataclass(frozen=True)
class Capacity:
    """Resources of the FPGA: logic (LUT4s; on iCE40 a logic cell holds one LUT4 and one
    flip-flop), flip-flops, hard multipliers and block RAMs of ``ram_block_bits`` bits with
    their widest data port ``ram_block_width`` (bits); ``data_memory_bits`` is extra single-port
    RAM for the data set (the iCE40UP5K's SPRAM), ``0`` when the data set uses block RAM."""
    luts: int
    ffs: int
    dsps: int
    dsp_width: int
    ram_blocks: int
    ram_block_bits: int
    ram_block_width: int
    data_memory_bits: int = 0


@dataclass(frozen=True)
class Board:
    """``name``: what the user types; ``platform``: the amaranth-boards class; ``family``:
    ``ice40`` or ``ecp5``; ``oscillator``: the clock resource; ``clock_mhz``: default design
    clock; ``preset``: ``NetConfig.from_strings`` arguments (``master_bits`` for
    ``master_extra_bits``) plus ``samples`` (data-set capacity); ``programmer``: the
    flashing tool; ``synth_opts``/``nextpnr_opts``: extra tool options; ``seed``: nextpnr's
    placement seed for the preset (one that meets its clock); ``timing_margin``: nextpnr is
    told the clock is this much faster than the PLL makes it (the report still compares the
    reached Fmax with the PLL's clock); ``uart_baud``: host-link rate of the on-board USB
    bridge."""
    name: str
    platform: type
    family: str
    oscillator: str
    clock_mhz: float
    capacity: Capacity
    preset: dict
    programmer: list
    synth_opts: str = ""
    nextpnr_opts: str = ""
    seed: int = 1
    timing_margin: float = 1.0
    uart_baud: int = 115200
    reset_button: str | None = None

    def __post_init__(self):
        # the margin reaches nextpnr as an LPF preference, which only the ECP5 flow reads: on
        # another family it would be dropped without a word
        if self.timing_margin != 1 and self.family != "ecp5":
            raise ValueError(f"{self.name}: timing_margin is applied on ECP5 boards only "
                             f"(this one is {self.family}); leave it at 1")

    @property
    def data_memory_attrs(self):
        """Attributes of the data set's memories: on boards with single-port RAM (the
        UP5K's SPRAM) Yosys is told to put it there ("huge"), not in block RAM."""
        return dict(SINGLE_PORT_RAM) if self.capacity.data_memory_bits else {}

    def config(self):
        """The preset's :class:`~dyadic.hdl.config.NetConfig`."""
        p = self.preset
        return NetConfig.from_strings(
            p["net"], p.get("act"), pes=p.get("pes"), mults=p.get("mults"),
            engine=p.get("engine"),
            rounding=p.get("rounding"), lr_shift=p.get("lr_shift", 5),
            **{k: p[k] for k in FORMAT_KEYS if k in p},
            **({"master_extra_bits": p["master_bits"]} if "master_bits" in p else {}))


BOARDS = {}

#: Preset keys that are number formats (``NetConfig.from_strings`` arguments).
FORMAT_KEYS = ("act_format", "weight_format", "sens_format")


def register(board):
    BOARDS[board.name] = board
    return board


def get_board(name):
    try:
        return BOARDS[name]
    except KeyError:
        raise BoardError(f"unknown board {name!r}: choose one of "
                         f"{', '.join(sorted(BOARDS))}") from None
