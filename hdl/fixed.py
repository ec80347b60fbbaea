"""Two's-complement fixed-point formats and the integer operations both the gateware and the
golden model perform.

A format ``SQ(i, f)`` has ``i`` integer bits *including the sign* and ``f`` fraction bits: a raw
integer ``r`` of ``i + f`` bits stands for ``r * 2**-f``. It is hls4ml's / Vivado HLS's
``ap_fixed<i + f, i>`` (``SQ(4, 12)`` = ``ap_fixed<16, 4>``), range ``[-2**(i-1), 2**(i-1) - 2**-f]``.

Every value the hardware writes back to a register goes through exactly one rounding and one
saturation (:func:`requantise`); products and dot products before that are exact. Rounding is
*round half up* (add half an output ulp, then arithmetic shift right), which is one adder in
hardware and is what :func:`round_shift` computes. This module works on Python ints and NumPy
int64 arrays; :mod:`dyadic.hdl` takes its widths from the same definitions.
"""

from dataclasses import dataclass
import math
import re

import numpy as np

__all__ = ["SQ", "round_shift", "floor_shift", "saturate", "requantise", "accumulator_bits",
           "FormatError"]


class FormatError(ValueError):
    """A fixed-point format that cannot be built or parsed."""


@dataclass(frozen=True)
class SQ:
    """Signed fixed-point format with ``int_bits`` integer bits (sign included) and
    ``frac_bits`` fraction bits."""

    int_bits: int
    frac_bits: int

    def __post_init__(self):
        if self.int_bits < 1 or self.frac_bits < 0 or self.width > 32:
            raise FormatError(
                f"format SQ({self.int_bits},{self.frac_bits}) is not allowed: integer bits "
                f"(sign included) must be >= 1, fraction bits >= 0, total width <= 32")

    @property
    def width(self):
        """Bits of a raw value."""
        return self.int_bits + self.frac_bits

    @property
    def raw_min(self):
        return -(1 << (self.width - 1))

    @property
    def raw_max(self):
        return (1 << (self.width - 1)) - 1

    @property
    def one(self):
        """Raw value of 1.0 (may exceed ``raw_max`` when ``int_bits == 1``)."""
        return 1 << self.frac_bits

    @property
    def ulp(self):
        """Value of one least significant bit."""
        return 2.0 ** -self.frac_bits

    @property
    def ap_fixed(self):
        """The equivalent Vivado HLS / hls4ml type."""
        return f"ap_fixed<{self.width},{self.int_bits}>"

    def quantise(self, x):
        """Float (array) -> raw int64, rounded to nearest (half up) and saturated."""
        raw = np.floor(np.asarray(x, dtype=np.float64) * self.one + 0.5)
        return np.clip(raw, self.raw_min, self.raw_max).astype(np.int64)

    def to_float(self, raw):
        """Raw int (array) -> float64 value."""
        return np.asarray(raw, dtype=np.float64) / self.one

    def __str__(self):
        return f"SQ({self.int_bits},{self.frac_bits})"

    @classmethod
    def parse(cls, text):
        """Parse ``"4.12"``, ``"4,12"`` or ``"SQ(4,12)"``."""
        m = re.fullmatch(r"\s*(?:SQ\()?\s*(\d+)\s*[.,]\s*(\d+)\s*\)?\s*", str(text), re.I)
        if not m:
            raise FormatError(f"cannot read fixed-point format {text!r}: write INT.FRAC, "
                              f"e.g. 4.12 for SQ(4,12) = ap_fixed<16,4>")
        return cls(int(m.group(1)), int(m.group(2)))


def round_shift(value, shift):
    """``value * 2**-shift`` rounded half up; a left shift when ``shift <= 0`` (exact)."""
    value = np.asarray(value, dtype=np.int64)
    if shift <= 0:
        return value << -shift
    return (value + (1 << (shift - 1))) >> shift


def floor_shift(value, shift):
    """``floor(value * 2**-shift)``: dropping low bits, as a bit slice does in hardware."""
    value = np.asarray(value, dtype=np.int64)
    return value << -shift if shift <= 0 else value >> shift


def saturate(value, fmt):
    """Clip raw ``value`` into ``fmt``. Returns ``(clipped, number_of_saturated_elements)``."""
    value = np.asarray(value, dtype=np.int64)
    clipped = np.clip(value, fmt.raw_min, fmt.raw_max)
    return clipped, int(np.count_nonzero(clipped != value))


def requantise(value, frac_bits, fmt):
    """Raw ``value`` with ``frac_bits`` fraction bits -> ``fmt``: one rounding (half up), one
    saturation. Returns ``(raw, number_of_saturated_elements)``."""
    return saturate(round_shift(value, frac_bits - fmt.frac_bits), fmt)


def accumulator_bits(a, b, terms):
    """Width of an accumulator that holds the exact sum of ``terms`` products of an ``a`` value
    and a ``b`` value without overflow (one sign bit shared, growth ``ceil(log2(terms))``)."""
    return a.width + b.width + max(0, math.ceil(math.log2(max(terms, 1))))
