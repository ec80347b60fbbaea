"""UART (8 data bits, no parity, 1 stop bit) as byte streams, and the accelerator behind it.

``divisor`` is clock cycles per bit (``clock_hz // baud``). The receiver samples each bit in
its middle after a start bit that is still low half a bit in; a byte arriving while its stream
is not ready is dropped (the protocol is request/response, so the host never sends one then).
"""

from amaranth import Module, Signal, Cat, Mux
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out

from .top import Accelerator

__all__ = ["UARTReceiver", "UARTTransmitter", "UARTAccelerator"]


class UARTReceiver(wiring.Component):
    """``rx_pin`` (idle high) -> ``bytes`` stream."""

    rx_pin: In(1, init=1)
    bytes: Out(stream.Signature(8))

    def __init__(self, divisor):
        assert divisor >= 4
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        pin = Signal(init=1)
        sync_pin = Signal(init=1)
        m.d.sync += [sync_pin.eq(self.rx_pin), pin.eq(sync_pin)]  # two flops: metastability
        timer = Signal(range(self.divisor + 1))
        bit = Signal(range(9))
        shift = Signal(8)
        with m.If(self.bytes.ready):
            m.d.sync += self.bytes.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~pin):
                    m.d.sync += timer.eq(self.divisor // 2)
                    m.next = "START"
            with m.State("START"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    with m.If(pin):
                        m.next = "IDLE"  # a glitch, not a start bit
                    with m.Else():
                        m.d.sync += [timer.eq(self.divisor - 1), bit.eq(0)]
                        m.next = "DATA"
            with m.State("DATA"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [shift.eq(Cat(shift[1:], pin)), timer.eq(self.divisor - 1),
                                 bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    with m.If(pin):
                        m.d.sync += [self.bytes.payload.eq(shift), self.bytes.valid.eq(1)]
                    m.next = "IDLE"
        return m


class UARTTransmitter(wiring.Component):
    """``bytes`` stream -> ``tx_pin`` (idle high)."""

    bytes: In(stream.Signature(8))
    tx_pin: Out(1, init=1)

    def __init__(self, divisor):
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.divisor))
        frame = Signal(10)  # start bit, 8 data bits, stop bit (LSB first)
        bits_left = Signal(range(11))
        # The next byte is taken in the stop bit's last cycle, so back-to-back bytes take
        # exactly 10 bit times each and a transmitter keeps pace with a receiver.
        last_cycle = (bits_left == 1) & (timer == self.divisor - 1)
        m.d.comb += [self.bytes.ready.eq((bits_left == 0) | last_cycle),
                     self.tx_pin.eq(Mux(bits_left == 0, 1, frame[0]))]
        with m.If(bits_left != 0):
            m.d.sync += timer.eq(timer + 1)
            with m.If(timer == self.divisor - 1):
                m.d.sync += [timer.eq(0), frame.eq(frame >> 1), bits_left.eq(bits_left - 1)]
        with m.If(self.bytes.ready & self.bytes.valid):
            m.d.sync += [frame.eq(Cat(0, self.bytes.payload, 1)), bits_left.eq(10),
                         timer.eq(0)]
        return m


class UARTAccelerator(wiring.Component):
    """The accelerator on two UART pins: what a board wrapper instantiates."""

    rx_pin: In(1, init=1)
    tx_pin: Out(1)
    busy: Out(1)
    idle: Out(1)
    failed: Out(1)

    def __init__(self, cfg, samples, clock_hz, baud, board, data_attrs=None):
        self.cfg, self.samples, self.board, self.data_attrs = cfg, samples, board, data_attrs
        self.divisor = clock_hz // baud
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = Accelerator(self.cfg, self.samples,
                                               cycles_per_byte=10 * self.divisor,
                                               board=self.board, data_attrs=self.data_attrs)
        m.submodules.rx = rx = UARTReceiver(self.divisor)
        m.submodules.tx = tx = UARTTransmitter(self.divisor)
        wiring.connect(m, rx.bytes, core.rx)
        # one byte held between the command engine and the transmitter, taken only when the
        # holder is empty: every signal between them is a register (the engine's reply logic
        # is long), and a byte every other cycle is far faster than the line
        held = Signal(8)
        full = Signal()
        m.d.comb += [core.tx.ready.eq(~full),
                     tx.bytes.payload.eq(held), tx.bytes.valid.eq(full)]
        with m.If(tx.bytes.ready):
            m.d.sync += full.eq(0)
        with m.If(core.tx.valid & ~full):
            m.d.sync += [held.eq(core.tx.payload), full.eq(1)]
        m.d.comb += [rx.rx_pin.eq(self.rx_pin), self.tx_pin.eq(tx.tx_pin),
                     self.busy.eq(core.busy), self.idle.eq(core.idle),
                     self.failed.eq(core.failed)]
        return m
