"""The access bus of :class:`~dyadic.hdl.network.RelaxationNetwork` driven from amaranth.sim."""

from dyadic.hdl.network import command_layout, READ_LATENCY

__all__ = ["AmaranthBus", "pack_command", "command_fields"]

_FIELDS = ("op", "count", "sample", "batch", "h_shift", "lr_shift", "gradient", "seed")


def command_fields(**fields):
    return {k: int(fields.get(k, 0)) for k in _FIELDS}


def pack_command(**fields):
    """The command payload as one integer (the layout's bit order)."""
    return command_layout.const(command_fields(**fields)).as_value().value


def _signed64(v):
    return v - (1 << 64) if v >> 63 else v


class AmaranthBus:
    def __init__(self, ctx, dut):
        self.ctx, self.dut = ctx, dut

    async def write(self, addr, value):
        ctx, dut = self.ctx, self.dut
        ctx.set(dut.addr, addr)
        ctx.set(dut.wdata, int(value) & (2 ** 64 - 1))
        ctx.set(dut.we, 1)
        await ctx.tick()
        ctx.set(dut.we, 0)

    async def read(self, addr):
        ctx, dut = self.ctx, self.dut
        ctx.set(dut.addr, addr)
        ctx.set(dut.re, 1)
        await ctx.tick()
        # the address is taken with ``re``: another on the bus at once must not change the answer
        ctx.set(dut.addr, addr ^ 1)
        ctx.set(dut.re, 0)
        for _ in range(READ_LATENCY - 1):
            await ctx.tick()
        assert ctx.get(dut.rvalid), f"no rvalid {READ_LATENCY} cycles after re"
        return _signed64(ctx.get(dut.rdata))

    async def command(self, **fields):
        ctx, dut = self.ctx, self.dut
        ctx.set(dut.cmd.payload, command_fields(**fields))
        ctx.set(dut.cmd.valid, 1)
        await ctx.tick().until(dut.cmd.ready)
        ctx.set(dut.cmd.valid, 0)
        await ctx.tick()
        while ctx.get(dut.busy):
            await ctx.tick()
