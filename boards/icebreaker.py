"""iCEBreaker: Lattice iCE40UP5K-SG48, 12 MHz oscillator, FTDI UART, two LEDs."""

from amaranth_boards.icebreaker import ICEBreakerPlatform

from .board import Board, Capacity, register

ICEBREAKER = register(Board(
    name="icebreaker", platform=ICEBreakerPlatform, family="ice40", oscillator="clk12",
    clock_mhz=30.0,   # the preset reaches 31.2 at 95.6% fill (README: Limits)
    # 5,280 logic cells (LUT4 + flip-flop each), 8 SB_MAC16, 30 SB_RAM40_4K, 4 x 256 kbit SPRAM
    capacity=Capacity(luts=5280, ffs=5280, dsps=8, dsp_width=16, ram_blocks=30,
                      ram_block_bits=4096, ram_block_width=16, data_memory_bits=4 * 256 * 1024),
    # the digits network, 64-16-10, on the serial engine (one lane every layer takes in turn:
    # on one PE per layer it needs 8,117 of the 5,280 logic cells), 8-bit formats; 96.4%
    # held out on the bit-exact model (float32 97.2%)
    preset={"net": "64-16-10", "act": "leaky_relu,identity", "engine": "serial",
            "act_format": "2.6", "weight_format": "2.6", "sens_format": "2.6",
            "master_bits": 4, "lr_shift": 5, "rounding": "nearest", "samples": 768},
    programmer=["iceprog"], synth_opts="-dsp -spram", reset_button="button",
    # the seed the preset was measured at (the 64-10 systolic preset until session 20, at
    # 5,262 of 5,280 cells, found no legal placement at seed 1)
    seed=2,
))
