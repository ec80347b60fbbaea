"""The on-chip data set (inputs ``x`` or targets ``y``): banks of block RAM with registered
outputs.

A data set of thousands of samples spans a hundred block RAMs spread over the whole chip; one
address bus into all of them and one read mux out of them are long paths. Here the memory is
split into banks of :data:`BANK_WORDS` words (one iCE40UP5K SPRAM; sixteen ECP5 DP16KD), and a
block-RAM bank into :data:`SLICES` memories of adjacent bits. The address and write controls
are registered twice on the way: a copy per bank, then a copy per slice, each near its loads
(one copy per slice, with the address's arithmetic before it, was 10 ns of wire on the ECP5
64-64-10); the bank's output is registered next to its blocks, and the bank select is registered
once more. Single-port RAM (the SPRAM, one memory per bank, a few per chip) takes the second
stage at the output instead, where it is 8 flip-flops rather than a bank's address: the
latency is the same, :attr:`DataMemory.LATENCY` cycles, for either memory. Writes land a
cycle after each address stage, and every stage is short.
"""

from amaranth import Module, Signal, Array, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .arith import delay, kept_copy

__all__ = ["DataMemory", "BANK_WORDS", "SLICES", "SINGLE_PORT_RAM"]

#: Words per bank: one 256 kbit SPRAM of 16-bit words.
BANK_WORDS = 16384
#: Memories per block-RAM bank, each a quarter of the word's bits with its own address register:
#: a bank's sixteen ECP5 DP16KD (16384 x 1 each) are spread over the chip, and one address
#: register driving all of them was 12 ns of wire from the farthest.
SLICES = 4
#: Synthesis attributes that put a memory in single-port RAM (the iCE40UP5K's SPRAM).
SINGLE_PORT_RAM = {"ram_style": "huge"}


class DataMemory(wiring.Component):
    """``depth`` words of ``signed(width)`` in banks of ``bank_words``; ``attrs``: synthesis
    attributes of the banks (:data:`SINGLE_PORT_RAM` puts them in the iCE40UP5K's SPRAM).

    Attributes
    ----------
    addr : In  word address, for reads and writes alike (so a bank may be single-port RAM).
    data : Out(signed(width))  the word at the ``addr`` of :attr:`LATENCY` cycles ago.
    wdata, we : In  write ``wdata`` at ``addr`` (idle time: the data set's upload).
    """

    #: Cycles from ``addr`` to ``data``: the bank's and the slice's address registers (block
    #: RAM) or the bank's and an output register (single-port RAM), the read, the bank's
    #: output register, the bank select.
    LATENCY = 5

    def __init__(self, width, depth, attrs=None, bank_words=BANK_WORDS):
        assert bank_words & (bank_words - 1) == 0, "banks are a power of two words"
        self.width, self.depth, self.attrs = width, depth, dict(attrs or {})
        self.bank_words = bank_words
        self.banks = -(-depth // bank_words)
        # single-port RAM (the SPRAM) is one memory per bank; block RAM banks are split
        # into SLICES memories of adjacent bits
        self.slices = 1 if self.attrs == SINGLE_PORT_RAM else min(SLICES, width)
        super().__init__({"addr": In(range(max(2, depth))), "data": Out(signed(width)),
                          "wdata": In(signed(width)), "we": In(1)})

    def elaborate(self, platform):
        m = Module()
        low = max(1, (min(self.bank_words, self.depth) - 1).bit_length())
        bank = self.addr[low:] if self.banks > 1 else 0
        # slice s holds bits edges[s] .. edges[s + 1] - 1 of the word
        edges = [self.width * s // self.slices for s in range(self.slices + 1)]
        # block RAM: a copy of the address and write controls per bank, then per slice
        spread = self.slices > 1
        outputs = []
        for b in range(self.banks):
            words = min(self.bank_words, self.depth - b * self.bank_words)
            b_addr, b_we, b_wdata = self.addr[:low], self.we & (bank == b), self.wdata
            if spread:
                b_addr = kept_copy(m, b_addr, f"bank{b}_addr")
                b_we = kept_copy(m, b_we, f"bank{b}_we")
                b_wdata = kept_copy(m, b_wdata, f"bank{b}_wdata")
            out = Signal(signed(self.width), name=f"bank{b}_data")
            for s, (lo, hi) in enumerate(zip(edges, edges[1:])):
                mem = Memory(shape=hi - lo, depth=words, init=[], attrs=self.attrs)
                m.submodules[f"bank{b}_{s}"] = mem
                rd, wr = mem.read_port(), mem.write_port()
                # each slice's own copy of the address and write controls
                addr = kept_copy(m, b_addr, f"bank{b}_{s}_addr")
                we = kept_copy(m, b_we, f"bank{b}_{s}_we")
                if spread:
                    # kept apart from other registers of the bus's word: Yosys had merged
                    # it with a layer's copy, whose fan-out to the PEs then also reached
                    # this slice's far blocks (the ECP5 preset's slowest path, 11.1 ns of wire)
                    wdata = kept_copy(m, b_wdata[lo:hi], f"bank{b}_{s}_wdata")
                else:
                    wdata = Signal(hi - lo, name=f"bank{b}_{s}_wdata", reset_less=True)
                    m.d.sync += wdata.eq(b_wdata[lo:hi])
                m.d.sync += out[lo:hi].eq(rd.data)
                # no read while writing: the output holds, as single-port RAM's does
                m.d.comb += [rd.addr.eq(addr), rd.en.eq(~we),
                             wr.addr.eq(addr), wr.data.eq(wdata), wr.en.eq(we)]
            outputs.append(out)
        selected_data = Signal(signed(self.width))
        if self.banks == 1:
            m.d.sync += selected_data.eq(outputs[0])
        else:
            # the bank of the address the outputs answer: address stages, read, output register
            selected = delay(m, bank, (2 if spread else 1) + 2, "bank_select")[-1]
            m.d.sync += selected_data.eq(Array(outputs)[selected])
        if spread:
            m.d.comb += self.data.eq(selected_data)
        else:
            m.d.sync += self.data.eq(selected_data)
        return m
