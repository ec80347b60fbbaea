"""The resource check before synthesis: hard multipliers, block RAM and the data set.

Counts come from the accelerator's RTLIL (the design the board will synthesise): every
``$mul`` with two run-time operands takes hard multipliers, every memory takes block RAMs in
the cheapest shapes the family offers, one copy per read port (a block RAM has one write and
one read port to spare), unless Yosys would rather keep it in logic (:func:`in_block_ram`),
and on boards with SPRAM the data set takes SPRAM. Logic cells cannot be counted this way;
the builder checks them after synthesis, before place and route.
"""

import functools
import math
import re
from dataclasses import dataclass

from amaranth.back import rtlil

from ..hdl.uart import UARTAccelerator
from ..hdl.ram import WRITE_FIELDS, BYTE
from .board import shortfall, does_not_fit

__all__ = ["Estimate", "estimate", "check_fits", "RAM_SHAPES"]

# (width, depth) configurations of one block RAM
RAM_SHAPES = {"ice40": [(16, 256), (8, 512), (4, 1024), (2, 2048)],
              "ecp5": [(36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384)]}
# Yosys' multiplier splitting: operand chunks narrower than this stay in logic
DSP_MIN_WIDTH = 2
DATA_SET_MEMORIES = ("x_mem", "y_mem")
SPRAM_WORDS, SPRAM_WIDTH = 16384, 16
# bits of a block RAM's write-enable granule: each byte of a byte-enabled memory
# (dyadic.hdl.ram.PackedRAM) takes one; the iCE40's write mask is per bit
RAM_BYTE = {"ice40": 1, "ecp5": 9}
BLOCK_COST = {"ice40": 64, "ecp5": 128}


@dataclass
class Estimate:
    """What the design needs: ``dsps`` hard multipliers, ``ram_blocks`` block RAMs,
    ``data_bits`` bits of data set (``data_in_spram``: they go to SPRAM)."""
    dsps: int
    ram_blocks: int
    data_bits: int
    data_in_spram: bool


def _chunks(width, dsp_width):
    return width // dsp_width + (width % dsp_width >= DSP_MIN_WIDTH)


def ram_blocks(width, depth, family):
    """Block RAMs for one ``width`` x ``depth`` memory: the width split into the family's
    port widths, each part in its cheapest shape (24 bits on the iCE40: 16 + 8), or the
    depth split, whole blocks of one shape and the rest in others (12 x 1210 on the iCE40:
    1024 words in three 4-bit blocks, 186 in one 16-bit block), as Yosys' mapper does."""
    @functools.cache
    def blocks(width, depth):
        if width <= 0 or depth <= 0:
            return 0
        by_width = min(math.ceil(depth / d) + blocks(width - w, depth)
                       for w, d in RAM_SHAPES[family])
        by_depth = min(((depth // d) * math.ceil(width / w) + blocks(width, depth % d)
                        for w, d in RAM_SHAPES[family] if depth > d), default=by_width)
        return min(by_width, by_depth)
    return blocks(width, depth)


def in_block_ram(width, depth, reads, rom, blocks, family):
    """Whether Yosys' memory mapper puts a ``width`` x ``depth`` memory with ``reads`` read
    ports (``rom``: no write port) needing ``blocks`` block RAMs into block RAM. It picks
    the cheapest by the costs of its libraries (Yosys' ``brams*.txt``, ``lutrams*.txt``): a
    block RAM 64 (iCE40) or 128 (ECP5), an ECP5 LUT RAM of 16 x 4 bits 4, per read port;
    a bit of flip-flops 1, of a ROM's logic 1/8."""
    logic = width * depth * (0.125 if rom else 1.0)
    if family == "ecp5":
        logic = min(logic, math.ceil(width / 4) * math.ceil(depth / 16) * 4 * reads)
    return BLOCK_COST[family] * blocks < logic


def estimate(board, cfg, samples):
    """Count ``board``'s resources that ``cfg`` with a ``samples``-sample data set needs."""
    text = rtlil.convert(UARTAccelerator(cfg, samples, int(board.clock_mhz * 1e6),
                                         board.uart_baud, board.name,
                                         data_attrs=board.data_memory_attrs), name="top")
    cap = board.capacity
    dsps = 0
    for cell in re.findall(r"cell \$mul .*?\n  end", text, re.S):
        a = int(re.search(r"A_WIDTH (\d+)", cell)[1])
        b = int(re.search(r"B_WIDTH (\d+)", cell)[1])
        operands = re.findall(r"connect \\[AB] (.*)", cell)
        if any(re.fullmatch(r"\d+'[01]+", o.strip()) for o in operands):
            continue  # a constant factor: shifts and adds
        dsps += _chunks(a, cap.dsp_width) * _chunks(b, cap.dsp_width)
    blocks, data_bits = 0, 0
    spram = cap.data_memory_bits > 0
    # the data set's banks are the memories of the x_mem / y_mem modules
    memories = []
    for module, body in re.findall(r"^module \\(\S+)\n(.*?)^end$", text, re.S | re.M):
        ports = lambda kind: re.findall(
            rf'cell \$mem{kind}_v2 \S+\n\s+parameter \\MEMID "\\\\(\S+)"', body)
        reads, writes = ports("rd"), ports("wr")
        for attrs, width, depth, name in re.findall(
                r"((?:  attribute .*\n)*)  memory width (\d+) size (\d+) \\(\S+)", body):
            fields = re.search(rf'attribute \\{WRITE_FIELDS} "([\d ]+)"', attrs)
            width = int(width)
            if fields:   # the fields' bytes in whole granules of the block RAM's
                granule = RAM_BYTE[board.family]
                width = sum(w if granule == 1 else -(-w // BYTE) * -(-BYTE // granule) * granule
                            for w in map(int, fields[1].split()))
            memories.append((module, width, int(depth), reads.count(name), name not in writes))
    for module, width, depth, reads, rom in memories:
        if module.split(".")[-1] in DATA_SET_MEMORIES:
            if spram:   # whole SPRAM blocks
                data_bits += (math.ceil(width / SPRAM_WIDTH) * math.ceil(depth / SPRAM_WORDS)
                              * SPRAM_WIDTH * SPRAM_WORDS)
                continue
            data_bits += width * depth
        need = ram_blocks(width, depth, board.family) * max(1, reads)
        if in_block_ram(width, depth, reads, rom, need, board.family):
            blocks += need
    return Estimate(dsps, blocks, data_bits, spram)


def check_fits(board, cfg, samples):
    """Raise :class:`BoardError` naming every resource ``cfg`` lacks on ``board``, and by how
    much; return the :class:`Estimate` otherwise."""
    need = estimate(board, cfg, samples)
    cap = board.capacity
    short = []
    if need.dsps > cap.dsps:
        short.append(shortfall("multipliers", need.dsps, cap.dsps))
    if need.ram_blocks > cap.ram_blocks:
        short.append(f"block RAM: {need.ram_blocks} blocks "
                     f"({need.ram_blocks * cap.ram_block_bits // 1024} kbit) needed, "
                     f"{cap.ram_blocks} available ({need.ram_blocks - cap.ram_blocks} too many)")
    if need.data_in_spram and need.data_bits > cap.data_memory_bits:
        over = need.data_bits - cap.data_memory_bits
        short.append(f"data set: {samples} samples need {need.data_bits // 1024} kbit of SPRAM, "
                     f"the board has {cap.data_memory_bits // 1024} kbit "
                     f"({over // 1024} kbit too many)")
    if short:
        raise does_not_fit(board, cfg, short, fix="Use fewer PEs (--pes), fewer samples "
                                                  "(--samples) or a smaller network")
    return need
