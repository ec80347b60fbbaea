"""Fixed-point arithmetic as Amaranth expressions, the same operations as :mod:`.fixed`:
round half up by a constant shift, saturation into a format with an overflow flag."""

from amaranth import Mux, Const, Signal, Cat

from .fixed import SQ

__all__ = ["round_shift", "saturate", "derivative_scale", "const_mul", "delay", "kept_copy",
           "KEPT_COPY"]


def const_mul(value, k):
    """``value * k`` for a constant ``k >= 0`` as shifts and adds: address arithmetic must not
    take a hard multiplier from the processing elements."""
    terms = [value << i for i in range(k.bit_length()) if k >> i & 1]
    return sum(terms[1:], terms[0]) if terms else Const(0, 1)


def round_shift(value, shift):
    """``value * 2**-shift`` rounded half up (constant ``shift``; left shift if ``<= 0``)."""
    if shift <= 0:
        return value << -shift
    return (value + (1 << (shift - 1))) >> shift


def saturate(value, fmt: SQ):
    """``(clipped, overflowed)``: ``value`` clipped into ``fmt`` (a ``signed(fmt.width)``
    Value) and a 1-bit flag.

    ``value`` fits when its bits from ``fmt``'s sign bit up are all equal: a test of a few
    top bits in LUTs, where comparisons with the limits would be two more carry chains after
    the (usually just computed) value."""
    if not value.shape().signed:
        value = Cat(value, Const(0, 1)).as_signed()
    w = fmt.width
    if len(value) <= w:
        return value.as_signed(), Const(0, 1)
    top, sign = value[w - 1:], value[-1]
    over = ~sign & top.any()
    under = sign & ~top.all()
    clipped = Mux(over, fmt.raw_max, Mux(under, fmt.raw_min, value[:w]))
    return clipped.as_signed()[:w].as_signed(), over | under


def derivative_scale(value, frac, code, act, fmt: SQ):
    """``round(d * value)`` into ``fmt``'s fraction bits (not yet saturated), ``d`` given by its
    2-bit code (0: zero, 1: one, 2: ``2**-act.shift``); ``value`` has ``frac`` bits."""
    one = round_shift(value, frac - fmt.frac_bits)
    if act.name == "leaky_relu":
        slope = round_shift(value, frac + act.shift - fmt.frac_bits)
        return Mux(code == 1, one, Mux(code == 2, slope, 0))
    return Mux(code == 1, one, 0)


def delay(m, value, cycles, name):
    """``[value, value one cycle ago, ..., value `cycles` cycles ago]`` as a register chain."""
    chain = [value]
    for k in range(1, cycles + 1):
        stage = Signal.like(value, name=f"{name}_d{k}")
        m.d.sync += stage.eq(chain[-1])
        chain.append(stage)
    return chain


#: Name part of registers that copy one value on purpose, each next to its own loads: the board
#: build marks their cells ``keep``, or Yosys would merge the identical registers back into one.
KEPT_COPY = "kept_copy"


def kept_copy(m, value, name):
    """A register of ``value`` (no reset: it follows ``value`` every cycle) that synthesis keeps
    apart from identical copies."""
    copy = Signal(value.shape(), name=f"{name}_{KEPT_COPY}", reset_less=True)
    m.d.sync += copy.eq(value)
    return copy
