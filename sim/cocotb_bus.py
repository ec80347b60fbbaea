"""The access bus of :class:`~dyadic.hdl.network.RelaxationNetwork` driven from cocotb.

Inputs change on falling clock edges and outputs are sampled there, so the behaviour does
not depend on the simulator's scheduling of the rising edge. ``idle_cycles`` inserts random
gaps (an ``random.Random``) between transactions, and commands may be offered while the
controller is still busy, exercising the stream's back-pressure.
"""

from cocotb.triggers import FallingEdge, ReadOnly

from .amaranth_bus import pack_command
from dyadic.hdl.network import READ_LATENCY

__all__ = ["CocotbBus"]


class CocotbBus:
    def __init__(self, dut, rng=None, max_idle=0):
        self.dut, self.rng, self.max_idle = dut, rng, max_idle
        self.back_pressure_seen = 0

    async def _gap(self):
        if self.rng is not None and self.max_idle:
            for _ in range(self.rng.randrange(self.max_idle + 1)):
                await FallingEdge(self.dut.clk)

    async def write(self, addr, value):
        dut = self.dut
        await self._gap()
        await FallingEdge(dut.clk)
        dut.addr.value = addr
        dut.wdata.value = int(value) & (2 ** 64 - 1)
        dut.we.value = 1
        await FallingEdge(dut.clk)
        dut.we.value = 0

    async def read(self, addr):
        dut = self.dut
        await self._gap()
        await FallingEdge(dut.clk)
        dut.addr.value = addr
        dut.re.value = 1
        await FallingEdge(dut.clk)
        dut.re.value = 0
        for _ in range(READ_LATENCY - 1):
            assert not int(dut.rvalid.value), "rvalid came early"
            await FallingEdge(dut.clk)
        assert int(dut.rvalid.value) == 1, f"no rvalid {READ_LATENCY} cycles after re"
        return dut.rdata.value.to_signed()

    async def offer(self, **fields):
        """Present a command and hold it until accepted (however busy the controller is)."""
        dut = self.dut
        await self._gap()
        await FallingEdge(dut.clk)
        dut.cmd__payload.value = pack_command(**fields)
        dut.cmd__valid.value = 1
        await ReadOnly()
        while not int(dut.cmd__ready.value):  # ready now: the next rising edge takes it
            self.back_pressure_seen += 1
            await FallingEdge(dut.clk)
            await ReadOnly()
        await FallingEdge(dut.clk)
        dut.cmd__valid.value = 0

    async def wait_idle(self):
        # one trigger for the whole command, not a Python wake-up per clock cycle
        if int(self.dut.busy.value):
            await FallingEdge(self.dut.busy)
            await FallingEdge(self.dut.clk)

    async def command(self, **fields):
        await self.offer(**fields)
        await self.wait_idle()
