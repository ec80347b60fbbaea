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
"""

from amaranth.lib.memory import Memory

__all__ = ["block_ram", "NO_RW_CHECK"]

#: Synthesis attribute: a read colliding with a write may return anything.
NO_RW_CHECK = {"no_rw_check": 1}


def block_ram(shape, depth):
    """A ``depth``-word memory of ``shape``, zero-initialised, marked :data:`NO_RW_CHECK`."""
    return Memory(shape=shape, depth=depth, init=[], attrs=NO_RW_CHECK)
