"""The status counters (:class:`~.regmap.Status`) in block RAM, one adder for all of them.

Nine wide counters in flip-flops, each with its own adder and all behind one read mux, cost
about a thousand iCE40 logic cells. Here each counter's events collect in a narrow *pending*
register; a round robin visits one counter per cycle, reads its word and, two cycles later,
writes back the word plus the pending sum taken when it was read (the pending register
restarts from that cycle's event, so nothing is lost). A counter is at most
:data:`ROUND` cycles behind its events, so a pending register needs only a few bits more
than its event. Counters wrap at 32 bits, ``LOSS`` at 64, as flip-flop counters would.
"""

from amaranth import Module, Signal, Mux, Array, Const, Cat
from amaranth.lib import wiring, data
from amaranth.lib.wiring import In, Out

from .arith import delay
from .ram import block_ram
from .regmap import Status

__all__ = ["StatusCounters", "ROUND", "counter_width"]

#: Cycles between two visits of the round robin to one counter.
ROUND = len(Status)


def counter_width(status):
    """Bits of a counter: 64 for the loss sum, 32 for the others."""
    return 64 if status == Status.LOSS else 32


class StatusCounters(wiring.Component):
    """Counters of :class:`~.regmap.Status`.

    Parameters
    ----------
    event_widths : dict Status -> int
        Bits of each counter's per-cycle increment.

    Attributes
    ----------
    add : In(struct of increments, one field per counter, lower-case names)
        Added this cycle.
    clear : In(1)
        Every counter restarts from zero; the increments of the next cycle are dropped.
    raddr : In(4), rdata : Out(64)
        Read port: the counter ``raddr`` one cycle later; exact while ``settled``.
    settled : Out(1)
        Every increment is in memory and no clear is pending.
    """

    def __init__(self, event_widths):
        self.event_widths = {s: event_widths.get(s, 1) for s in Status}
        layout = data.StructLayout({s.name.lower(): w for s, w in self.event_widths.items()})
        super().__init__({"add": In(layout), "clear": In(1), "raddr": In(4),
                          "rdata": Out(64), "settled": Out(1)})

    def elaborate(self, platform):
        m = Module()
        n = len(Status)
        # a counter waits at most ROUND cycles, then its sum is in flight for two more
        pending = {s: Signal(w + (ROUND + 2).bit_length(), name=f"pending_{s.name.lower()}")
                   for s, w in self.event_widths.items()}
        add = {s: getattr(self.add, s.name.lower()) for s in Status}

        m.submodules.words = words = block_ram(64, n)
        visit = Signal(range(n))            # the counter read this cycle
        m.d.sync += visit.eq(Mux(visit == n - 1, 0, visit + 1))
        visit_rd, bus_rd, wr = words.read_port(), words.read_port(), words.write_port()

        # cycle 0: the word is read and the pending sum taken; cycle 1: the word (zero if
        # cleared since) is registered; cycle 2: the sum is written (a 64-bit carry chain of
        # its own). Visits of one word are ROUND > 2 cycles apart, so they never overlap.
        stale = Signal(n, init=(1 << n) - 1)   # counters cleared (or reset), not yet rewritten
        taken = Signal(64)
        word = Signal(64)
        visited = delay(m, visit, 2, "visited")
        valid = delay(m, Const(1), 2, "visit_valid")
        m.d.comb += visit_rd.addr.eq(visit)
        m.d.sync += taken.eq(Array(pending[s] for s in Status)[visit])
        for s in Status:
            with m.If(visit == s):
                m.d.sync += pending[s].eq(add[s])
            with m.Else():
                m.d.sync += pending[s].eq(pending[s] + add[s])

        was_stale = stale.bit_select(visited[1], 1)
        changes = Signal()
        addend = Signal(64)
        m.d.sync += [word.eq(Mux(was_stale, 0, visit_rd.data)), addend.eq(taken),
                     changes.eq(was_stale | taken.any()),
                     stale.eq(stale & ~(valid[1] << visited[1])[:n])]

        wide = Array(Const(counter_width(s) == 64) for s in Status)[visited[2]]
        total = word + addend
        # a word that would not change is not written: a settled memory is only read
        m.d.comb += [wr.addr.eq(visited[2]), wr.en.eq(valid[2] & changes),
                     wr.data.eq(Mux(wide, total, total[:32]))]

        # registered (the controller's state decodes it): the clear takes effect a cycle late
        clearing = Signal()
        m.d.sync += clearing.eq(self.clear)
        with m.If(clearing):
            m.d.sync += [stale.eq((1 << n) - 1), taken.eq(0), addend.eq(0), word.eq(0),
                         changes.eq(0), *(p.eq(0) for p in pending.values())]

        m.d.comb += [bus_rd.addr.eq(self.raddr), self.rdata.eq(bus_rd.data)]
        quiet = Signal()
        m.d.sync += quiet.eq(~Cat(*pending.values(), taken, addend, changes).any() & (stale == 0)
                             & ~self.clear & ~clearing & ~Cat(*add.values()).any())
        m.d.comb += self.settled.eq(quiet)
        return m
