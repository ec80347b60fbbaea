"""ULX3S 85F: Lattice ECP5 LFE5U-85F-6 (CABGA381), 25 MHz oscillator, FTDI UART, eight LEDs."""

from amaranth_boards.ulx3s import ULX3S_85F_Platform

from .board import Board, Capacity, register

ULX3S_85F = register(Board(
    name="ulx3s-85f", platform=ULX3S_85F_Platform, family="ecp5", oscillator="clk25",
    # The network, 64-64-10, on 16 + 5 PEs of two lanes each: 85 of the 156
    # multipliers (a weight's and a gradient's per lane, and the loss's squarer) and 165 of
    # the 208 block RAMs (two per lane: a weight and its gradient share a word; the data set
    # takes 76), 58.3k LUT4s, in 27 minutes beside another build: 99.35 MHz asked for 95
    # with the margin below (session 20; session 19's netlist 96.4, and 92.9 asked for 90;
    # without --tmg-ripup session 18's reached 83.0 asked for 75, 85.3 for 100); placements
    # vary, so a design change may need a lower --clock or another --seed (``seed``, 1 here,
    # is the one built). With one lane per PE (--mults 1,1: 43 multipliers) the same network
    # reached 87-97 MHz.
    clock_mhz=95.0,
    # 83,640 LUT4 and flip-flops, 156 MULT18X18D, 208 DP16KD of 18 kbit (36 bits wide)
    capacity=Capacity(luts=83640, ffs=83640, dsps=156, dsp_width=18, ram_blocks=208,
                      ram_block_bits=18432, ram_block_width=36),
    preset={"net": "64-64-10", "act": "leaky_relu,identity", "pes": "16,5", "mults": "2,2",
            # 1024 samples (76 block RAMs): all of digits' 1,798 would take 132, more than
            # the lanes leave; with 150 the earlier 64-16-10 preset reached only 60-72 MHz
            "rounding": "stochastic", "samples": 1024},
    programmer=["openFPGALoader", "--board", "ulx3s"], reset_button="button_pwr",
    # the static placer and router2: they built the earlier 64-16-10 preset in about 5
    # minutes, the defaults in 7 to over 25 (router1 was still resolving congestion when
    # stopped)
    nextpnr_opts="--router router2 --placer static --tmg-ripup",
    # router2's timing-driven rip-up (--tmg-ripup) stops at its own estimate of the target,
    # which the final timing analysis put 0.4-3% lower (session 19, seed 1: 96.9 asked for
    # 100, 94.6 for 95, 89.4 for 90), so nextpnr is asked for 5% more than the PLL makes
    timing_margin=1.05,
))
