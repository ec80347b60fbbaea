"""The accelerator's command set and address map: one definition for gateware and driver.

Addresses on the access bus are ``space << 24 | layer << 20 | index``:

========  ======================================================================
space     index
========  ======================================================================
A, D, LAM register ``i`` of layer ``l`` (current value; writable for trace mode)
W         ``row << col_bits | col`` of layer ``l`` (master weight, bias col last)
G         as W, the gradient accumulator (read only)
X, Y      ``sample * n_0 + i`` / ``sample * n_L + i`` of the on-chip data set
STATUS    one of :class:`Status`
========  ======================================================================
"""

import enum

from .pe import bits

__all__ = ["Space", "Status", "Op", "REGISTERS", "address", "col_bits"]


class Space(enum.IntEnum):
    A = 0
    D = 1
    LAM = 2
    W = 3
    G = 4
    X = 5
    Y = 6
    STATUS = 7


#: The dyadic registers of a layer by name, and the address space of each.
REGISTERS = {"a": Space.A, "d": Space.D, "lam": Space.LAM}


class Status(enum.IntEnum):
    STEPS = 0          # relaxation steps since the counters were cleared
    SAMPLES = 1        # training samples whose output was scored
    LOSS = 2           # sum |a_L - y|^2, raw, NetConfig.loss_frac fraction bits
    CORRECT = 3        # samples whose first largest output is the first largest target
    SAT_ACTIVATION = 4
    SAT_SENSITIVITY = 5
    SAT_WEIGHT = 6
    CYCLES = 7         # clock cycles spent busy
    UPDATES = 8        # weight updates applied


class Op(enum.IntEnum):
    """Commands of the relaxation controller (``Command.op``)."""
    RELAX = 0      # ``count`` steps on sample ``sample``, step 2**-h_shift; accumulate the
                   # gradient (overwriting) in the last step if ``gradient``
    TRAIN = 1      # one epoch of pipelined mini-batch SGD over samples sample..sample+count-1
    UPDATE = 2     # apply the accumulated gradient
    SEED = 3       # seed every PE's xorshift32 with ``seed``
    CLEAR = 4      # clear the status counters
    INFER = 5      # forward passes over samples sample..sample+count-1, in batches of ``batch``,
                   # scoring loss and correct predictions; no gradients, no update


def col_bits(cfg):
    """Bits of the column field of a W/G index (fits every layer's row, bias included)."""
    return bits(max(cfg.row_length(l) for l in range(1, cfg.L + 1)))


def address(space, layer=0, index=0):
    return (int(space) << 24) | (layer << 20) | index
