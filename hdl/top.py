"""The accelerator: relaxation network behind the command engine, on a byte stream.

:class:`Accelerator` exposes ``rx``/``tx`` byte streams: the simulated board drives them
directly, a board wraps them in a UART (:mod:`.uart`).
"""

import hashlib
import json

from amaranth import Module
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out

from .command import CommandEngine
from .network import RelaxationNetwork
from .protocol import VERSION, TIMEOUT_BYTES

__all__ = ["Accelerator", "build_info"]


def build_info(cfg, samples, board="sim"):
    """The INFO reply: what the device was built for, and a build id naming exactly that."""
    body = {"protocol": VERSION, "config": cfg.to_dict(), "samples": samples, "board": board}
    body["build"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]
    return json.dumps(body, separators=(",", ":")).encode()


class Accelerator(wiring.Component):
    """Parameters: ``cfg``, ``samples`` (data-set capacity), ``cycles_per_byte`` (clock cycles
    one byte takes on the link, which scales the stalled-frame timeout), ``board``,
    ``data_attrs`` (synthesis attributes of the data set's memories).

    Attributes
    ----------
    rx : In(stream of 8 bits), tx : Out(stream of 8 bits)
    busy : Out(1)  the network runs a command.
    idle : Out(1)  waiting for a request, nothing to send.
    failed : Out(1)  the last request was answered with an error.
    """

    rx: In(stream.Signature(8))
    tx: Out(stream.Signature(8))
    busy: Out(1)
    idle: Out(1)
    failed: Out(1)

    def __init__(self, cfg, samples=2048, cycles_per_byte=1, board="sim", data_attrs=None):
        self.cfg, self.samples, self.board, self.data_attrs = cfg, samples, board, data_attrs
        self.timeout = TIMEOUT_BYTES * max(1, cycles_per_byte)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.network = network = RelaxationNetwork(self.cfg, self.samples,
                                                                 self.data_attrs)
        m.submodules.engine = engine = CommandEngine(
            network, build_info(self.cfg, self.samples, self.board), self.timeout)
        wiring.connect(m, engine.cmd, network.cmd)
        # the access bus is registered on its way in: the engine's address arithmetic and
        # the network's decoding into every PE's memories get a cycle each
        m.d.sync += [network.addr.eq(engine.addr), network.wdata.eq(engine.wdata),
                     network.we.eq(engine.we), network.re.eq(engine.re)]
        m.d.comb += [engine.rdata.eq(network.rdata), engine.rvalid.eq(network.rvalid),
                     engine.busy.eq(network.busy), self.busy.eq(network.busy),
                     self.idle.eq(engine.idle), self.failed.eq(engine.failed)]
        wiring.connect(m, wiring.flipped(self.rx), engine.rx)
        wiring.connect(m, engine.tx, wiring.flipped(self.tx))
        return m
