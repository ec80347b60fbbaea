"""UART receiver and transmitter in amaranth.sim, and the accelerator answering over them."""

import struct

from amaranth import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from dyadic.hdl.config import NetConfig
from dyadic.hdl.protocol import encode, Request, FrameDecoder, ERROR, Error
from dyadic.hdl.regmap import Space, address
from dyadic.hdl.uart import UARTReceiver, UARTTransmitter, UARTAccelerator

DIVISOR = 8


async def send_serial(ctx, pin, data, divisor=DIVISOR):
    for byte in data:
        for level in [0] + [(byte >> k) & 1 for k in range(8)] + [1]:
            ctx.set(pin, level)
            for _ in range(divisor):
                await ctx.tick()


async def receive_serial(ctx, pin, count, divisor=DIVISOR, limit=200000):
    out = bytearray()
    for _ in range(limit):
        if len(out) == count:
            break
        await ctx.tick()
        if ctx.get(pin) == 0:  # start bit: sample the middle of each data bit
            for _ in range(divisor // 2):
                await ctx.tick()
            byte = 0
            for k in range(8):
                for _ in range(divisor):
                    await ctx.tick()
                byte |= ctx.get(pin) << k
            for _ in range(divisor):
                await ctx.tick()
            out.append(byte)
    return bytes(out)


def test_uart_loopback_of_every_byte_value():
    m = Module()
    m.submodules.rx = rx = UARTReceiver(DIVISOR)
    m.submodules.tx = tx = UARTTransmitter(DIVISOR)
    wiring.connect(m, rx.bytes, tx.bytes)
    data = bytes(range(256))
    got = {}

    async def sender(ctx):
        ctx.set(rx.rx_pin, 1)
        for _ in range(20):
            await ctx.tick()
        await send_serial(ctx, rx.rx_pin, data)

    async def listener(ctx):
        got["data"] = await receive_serial(ctx, tx.tx_pin, len(data))

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(sender)
    sim.add_testbench(listener)
    sim.run()
    assert got["data"] == data


def test_accelerator_answers_over_the_uart():
    cfg = NetConfig.from_strings("3-2", "identity", pes="1")
    dut = UARTAccelerator(cfg, samples=2, clock_hz=8 * 1000, baud=1000, board="sim")
    replies = []

    async def bench(ctx):
        ctx.set(dut.rx_pin, 1)
        for _ in range(20):
            await ctx.tick()
        for frame in (encode(Request.WRITE, struct.pack("<II", address(Space.X, 0, 1), 9)),
                      encode(Request.READ, struct.pack("<IH", address(Space.X, 0, 1), 1)),
                      encode(0x42)):
            await send_serial(ctx, dut.rx_pin, frame)
            expected = {Request.WRITE: 6, Request.READ: 14}.get(frame[1], 8)
            replies.append(await receive_serial(ctx, dut.tx_pin, expected))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    decoded = [FrameDecoder().feed(r) for r in replies]
    assert decoded[0] == [(Request.WRITE | 0x80, b"")]
    assert decoded[1] == [(Request.READ | 0x80, struct.pack("<q", 9))]
    assert decoded[2] == [(ERROR, bytes([Error.UNKNOWN_OP, 0x42]))]
