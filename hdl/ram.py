"""Datapath memories: block RAM whose read of a word written in the same cycle is never used.

Amaranth's synchronous read port promises the *old* word when a read meets a write to the same
address; to keep that promise Yosys registers the write data and muxes it onto the block RAM's
output, a LUT level on the RAM's slowest path (5.6 ns clock-to-output on the ECP5). No
datapath memory needs it: within a pass each word is read once and written (if at all) later,
passes are separated by the layer's drain, the skew memory's slot written in a forward pass is
read by later steps (a trace step reads the slot it writes and discards the word for the
forward operand), the read data of an idle-time write is discarded, and the status counters'
words are read by the bus only once settled, when none is written. Memories made by
:func:`block_ram` carry ``no_rw_check``; the board build re-derives their read ports with that
attribute honoured (:data:`dyadic.boards.build.COLLISIONS_UNDEFINED`), so the output goes
straight into its register. Simulation keeps the old-word behaviour, which nothing reads.

:class:`PackedRAM` keeps fields that are read together and written apart (a PE's weight and
gradient rows) in one memory of whole bytes with a byte-enabled write port, where separate
memories would each round their width up to a block RAM's.
"""

from amaranth import Cat, Const, unsigned
from amaranth.lib.memory import Memory

__all__ = ["block_ram", "PackedRAM", "NO_RW_CHECK", "BYTE", "WRITE_FIELDS"]

#: Synthesis attribute: a read colliding with a write may return anything.
NO_RW_CHECK = {"no_rw_check": 1}


def block_ram(shape, depth):
    """A ``depth``-word memory of ``shape``, zero-initialised, marked :data:`NO_RW_CHECK`."""
    return Memory(shape=shape, depth=depth, init=[], attrs=NO_RW_CHECK)


#: Write granule of a :class:`PackedRAM`. Yosys puts each byte in one of the ECP5 DP16KD's
#: 9-bit byte lanes (a 64-bit word of 8 bytes in two blocks); the iCE40's write mask is per bit,
#: and there Yosys drops the padding, always written 0.
BYTE = 8
#: Memory attribute listing a :class:`PackedRAM`'s field widths (for the resource estimate).
WRITE_FIELDS = "write_fields"


class PackedRAM:
    """A :func:`block_ram` of ``depth`` words holding signed fields of ``widths`` bits side by
    side, each in whole :data:`BYTE` s, with a byte-enabled write port: a write of one field
    leaves the others. Fields read together share the read port and its address.

    ``memory``; ``read``, ``write``: its ports (``write.en`` one bit per byte: see
    :meth:`enable`); :meth:`field` and :meth:`word` take words apart and put them together."""

    def __init__(self, widths, depth):
        self.widths = tuple(widths)
        self.bytes = [-(-w // BYTE) for w in self.widths]
        self.offsets = [BYTE * sum(self.bytes[:i]) for i in range(len(self.widths))]
        self.memory = Memory(shape=unsigned(BYTE * sum(self.bytes)), depth=depth, init=[],
                             attrs={**NO_RW_CHECK,
                                    WRITE_FIELDS: " ".join(map(str, self.widths))})
        self.read = self.memory.read_port()
        self.write = self.memory.write_port(granularity=BYTE)

    def field(self, word, i):
        """Field ``i`` of ``word``, signed."""
        return word[self.offsets[i]:self.offsets[i] + self.widths[i]].as_signed()

    def word(self, values):
        """A word of ``values``, one per field, each padded to its bytes."""
        return Cat(*(Cat(v[:w], Const(0, BYTE * n - w))
                     for v, w, n in zip(values, self.widths, self.bytes)))

    def enable(self, enables):
        """``write.en`` for one 1-bit enable per field."""
        return Cat(*(e.replicate(n) for e, n in zip(enables, self.bytes)))
