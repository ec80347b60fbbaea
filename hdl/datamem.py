"""The on-chip data set (inputs ``x`` or targets ``y``): banks of block RAM with registered
outputs.

A data set of thousands of samples spans a hundred block RAMs spread over the whole chip; one
read mux across all of them is a long path. Here the memory is split into banks of
:data:`BANK_WORDS` words (one iCE40UP5K SPRAM; sixteen ECP5 DP16KD), each bank's output is
registered next to its blocks, and the bank select is registered once more: reads take
:attr:`DataMemory.LATENCY` cycles and every stage is short.
"""

from amaranth import Module, Signal, Array, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["DataMemory", "BANK_WORDS"]

#: Words per bank: one 256 kbit SPRAM of 16-bit words.
BANK_WORDS = 16384


class DataMemory(wiring.Component):
    """``depth`` words of ``signed(width)``.

    Attributes
    ----------
    addr : In  word address, for reads and writes alike (so a bank may be single-port RAM).
    data : Out(signed(width))  the word at the ``addr`` of :attr:`LATENCY` cycles ago.
    wdata, we : In  write ``wdata`` at ``addr`` (idle time: the data set's upload).
    """

    #: Cycles from ``addr`` to ``data``: the bank's read, its output register, the bank select.
    LATENCY = 3

    def __init__(self, width, depth):
        self.width, self.depth = width, depth
        self.banks = -(-depth // BANK_WORDS)
        super().__init__({"addr": In(range(max(2, depth))), "data": Out(signed(width)),
                          "wdata": In(signed(width)), "we": In(1)})

    def elaborate(self, platform):
        m = Module()
        low = max(1, (min(BANK_WORDS, self.depth) - 1).bit_length())
        bank = self.addr[low:] if self.banks > 1 else 0
        outputs = []
        for b in range(self.banks):
            words = min(BANK_WORDS, self.depth - b * BANK_WORDS)
            mem = Memory(shape=signed(self.width), depth=words, init=[])
            m.submodules[f"bank{b}"] = mem
            rd, wr = mem.read_port(), mem.write_port()
            out = Signal(signed(self.width), name=f"bank{b}_data")
            m.d.comb += [rd.addr.eq(self.addr[:low]), wr.addr.eq(self.addr[:low]),
                         wr.data.eq(self.wdata), wr.en.eq(self.we & (bank == b))]
            m.d.sync += out.eq(rd.data)
            outputs.append(out)
        if self.banks == 1:
            m.d.sync += self.data.eq(outputs[0])
        else:
            selected = [Signal.like(bank, name=f"bank_select{k}") for k in range(2)]
            m.d.sync += [selected[0].eq(bank), selected[1].eq(selected[0])]
            m.d.sync += self.data.eq(Array(outputs)[selected[1]])
        return m
