"""cocotb testbenches, the check scenarios shared with amaranth.sim, the simulated board and
cycle measurements."""
