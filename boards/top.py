"""The design a board runs: PLL, reset, the accelerator on the USB bridge's UART, LEDs.

LEDs (as many as the board has, in this order): idle (waiting for a request), busy (the
network is running a command), failed (the last request was answered with an error).
"""

from amaranth import Module, Signal, ClockDomain, Instance, Elaboratable
from amaranth.build import ResourceError
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from ..hdl.uart import UARTAccelerator
from .pll import ice40_pll, ecp5_pll

__all__ = ["BoardTop", "pll_for"]


def pll_for(board, clock_mhz):
    """The PLL setting reaching ``clock_mhz`` from the board's oscillator (raises PLLError)."""
    fin = board.platform().lookup(board.oscillator).clock.frequency / 1e6
    return (ice40_pll if board.family == "ice40" else ecp5_pll)(fin, clock_mhz)


#: Multipliers from which an ECP5 design's reset goes on a global net (the 8 + 2 PE preset
#: has 10; its fabric reset, 18k loads, was its slowest path).
GLOBAL_RESET_MULTIPLIERS = 8


class BoardTop(Elaboratable):
    """``board``: :class:`~.board.Board`; ``cfg``, ``samples``: the accelerator;
    ``pll``: :class:`~.pll.PLLSetting` of the design clock."""

    def __init__(self, board, cfg, samples, pll):
        self.board, self.cfg, self.samples, self.pll = board, cfg, samples, pll

    def elaborate(self, platform):
        m = Module()
        board, pll = self.board, self.pll
        # ECP5, designs of many PEs: the reset is asynchronous, on a global net (below).
        # Small ones keep the synchronous reset in fabric: its net is short, and nextpnr's
        # router2 failed to route the reduced CI build's reset from its synchroniser into the
        # global buffer ("Failed to route arc ... G_CLKI_TDCC0"), a placement-dependent dead end.
        global_reset = (board.family == "ecp5"
                        and self.cfg.multipliers >= GLOBAL_RESET_MULTIPLIERS)
        m.domains.sync = cd = ClockDomain(async_reset=global_reset)
        locked = Signal()
        if board.family == "ice40":
            # the PLL sits on the oscillator's pad: no input buffer in between
            pad = platform.request(board.oscillator, dir="-")
            m.submodules.pll = Instance(
                "SB_PLL40_PAD", **{f"p_{k}": v for k, v in pll.params.items()},
                i_PACKAGEPIN=pad.io, i_RESETB=1, i_BYPASS=0,
                o_PLLOUTGLOBAL=cd.clk, o_LOCK=locked)
        else:
            m.submodules.osc = osc = io.Buffer("i", platform.request(board.oscillator, dir="-"))
            m.submodules.pll = Instance(
                "EHXPLLL", **{f"p_{k}": v for k, v in pll.params.items()},
                p_FEEDBK_PATH="CLKOP", p_CLKOP_ENABLE="ENABLED", p_CLKOP_FPHASE=0,
                a_FREQUENCY_PIN_CLKI=f"{pll.fin_mhz:g}", a_FREQUENCY_PIN_CLKOP=f"{pll.fout_mhz:g}",
                i_CLKI=osc.i, i_CLKFB=cd.clk, i_RST=0, i_STDBY=0, i_PHASESEL0=0, i_PHASESEL1=0,
                i_PHASEDIR=0, i_PHASESTEP=0, i_PHASELOADREG=0, i_PLLWAKESYNC=0, i_ENCLKOP=0,
                o_CLKOP=cd.clk, o_LOCK=locked)
        platform.add_clock_constraint(cd.clk, pll.fout_mhz * 1e6)

        reset = ~locked
        if board.reset_button:
            m.submodules.reset_button = button = io.Buffer(
                "i", platform.request(board.reset_button, 0, dir="-"))
            reset = reset | button.i
        if global_reset:
            # ECP5: the reset, asynchronous, goes from its synchroniser onto a global net;
            # synchronous, Yosys merged it with the design's own clears into LUTs in front of
            # the flip-flops' set/reset pins, a fabric net of 18k loads (up to 12 ns of wire,
            # the 64-64-10's slowest path). It is still released on a clock edge.
            m.domains.reset = reset_cd = ClockDomain(async_reset=True, local=True)
            m.d.comb += reset_cd.clk.eq(cd.clk)
            m.submodules.reset_sync = ResetSynchronizer(reset, domain="reset")
            m.submodules.reset_global = Instance("DCCA", i_CLKI=reset_cd.rst, i_CE=1,
                                                 o_CLKO=cd.rst)
        else:
            m.submodules.reset_sync = ResetSynchronizer(reset, domain="sync")

        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
        clock_hz = round(pll.fout_mhz * 1e6)
        m.submodules.accelerator = acc = UARTAccelerator(
            self.cfg, self.samples, clock_hz, board.uart_baud, board.name,
            data_attrs=board.data_memory_attrs)
        m.d.comb += [acc.rx_pin.eq(rx.i), tx.o.eq(acc.tx_pin)]

        for index, status in enumerate((acc.idle, acc.busy, acc.failed)):
            try:
                port = platform.request("led", index, dir="-")
            except ResourceError:   # fewer LEDs than states: show what fits
                break
            m.submodules[f"led{index}"] = led = io.Buffer("o", port)
            m.d.sync += led.o.eq(status)   # registered: no logic path ends at a pin
        return m
