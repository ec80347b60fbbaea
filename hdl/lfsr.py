"""The random source of stochastic rounding: one xorshift32 generator per processing element.

xorshift32 (Marsaglia 2003) is a 32-bit linear-feedback shift register over GF(2) with period
``2**32 - 1``; one step is three shift-XORs (``x ^= x << 13; x ^= x >> 17; x ^= x << 5``, all
32-bit), i.e. a few LUT levels and no multiplier.

Contract shared by gateware and golden model, bit for bit:

* Lane ``k`` of PE ``p`` of layer ``l`` (1-based) is generator ``j = p * M + k``
  (``M`` lanes per PE; with one, the generator is the PE's). It owns a state seeded at the
  start of training as ``seed ^ pe_constant(l, j)`` (32-bit), replaced by ``pe_constant(l, j)``
  if that is zero.
* Before each weight it updates, the generator steps its state once and uses the low
  ``NetConfig.update_shift`` bits of the *new* state as the rounding offset.
* A generator updates its rows in order (:meth:`NetConfig.generators`: the PE's folds
  ``k, k + M, ...``), each row's columns ``0 .. n_{l-1}`` with the bias last; the state
  carries over from one update to the next.
"""

from amaranth import Module, Signal, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["MASK", "xorshift32", "pe_constant", "seed_state", "LFSR"]

MASK = 0xFFFF_FFFF


def xorshift32(x):
    """One step. ``x``: int or NumPy uint64 array holding 32-bit states."""
    x ^= (x << 13) & MASK
    x ^= x >> 17
    x ^= (x << 5) & MASK
    return x


def pe_constant(layer, pe):
    """Per-PE 32-bit non-zero constant that decorrelates the generators of one seed."""
    c = ((layer * 0x9E37_79B9) ^ ((pe + 1) * 0x85EB_CA6B) ^ 0x2545_F491) & MASK
    return c or 1


def seed_state(seed, layer, pe):
    """Initial state of PE ``pe`` of layer ``layer`` for a 32-bit ``seed``."""
    s = (seed ^ pe_constant(layer, pe)) & MASK
    return s or pe_constant(layer, pe)


class LFSR(wiring.Component):
    """xorshift32 generator of one PE.

    Attributes
    ----------
    seed : In(32)
        Training seed; loaded (XOR the PE constant) two cycles after ``load`` is high
        (registered beside the generator first).
    load : In(1)
    step : In(1)
        Advance one step this cycle.
    state : Out(32)
        Current state (reset value: the PE constant); after a step, its low bits are the
        rounding offset.
    """

    def __init__(self, layer, pe):
        self.constant = pe_constant(layer, pe)
        super().__init__({"seed": In(32), "load": In(1), "step": In(1),
                          "state": Out(32, init=self.constant)})

    def elaborate(self, platform):
        m = Module()
        x = self.state
        s1 = Signal(32)
        s2 = Signal(32)
        s3 = Signal(32)
        m.d.comb += [s1.eq(x ^ (x << 13)[:32]), s2.eq(s1 ^ (s1 >> 17)), s3.eq(s2 ^ (s2 << 5)[:32])]
        # the seed and its load are registered here first: from the PE's copy, the test
        # for zero and the load's multiplexer were 6.3 ns of wire and 4 LUTs (the ULX3S
        # preset's slowest path asked for 75 MHz, 88.4 reached)
        seed, load = Signal(32), Signal()
        m.d.sync += [seed.eq(self.seed), load.eq(self.load)]
        with m.If(load):   # seed ^ constant, or the constant where that is zero
            m.d.sync += x.eq(Mux(seed == self.constant, self.constant, seed ^ self.constant))
        with m.Elif(self.step):
            m.d.sync += x.eq(s3)
        return m
