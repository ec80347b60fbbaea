"""The RTL against the golden model, bit for bit, in cocotb on Icarus and on Verilator:
every register after every relaxation step from random contents, gradients, weights after
pipelined mini-batch epochs with stochastic rounding, status counters (with saturation in
every PE), back-pressure."""

import pytest

from dyadic.boards import get_board
from dyadic.hdl.config import NetConfig
from dyadic.sim.runner import SIMULATORS, TOPLEVEL, run_cocotb, missing_simulator

# L = 1..4, odd sizes, folded (fewer PEs than rows) and unfolded layers, every activation,
# narrow formats that saturate, nearest and stochastic rounding, several multiplier lanes per PE,
# both engines.
CONFIGS = {
    "4-3-relu-unfolded": (NetConfig.from_strings("4-3", "relu", pes="3"), 5),
    "5-7-3-folded": (NetConfig.from_strings("5-7-3", "leaky_relu,identity", pes="3,2",
                                            act_format="3.6", sens_format="2.7",
                                            weight_format="2.6", master_extra_bits=2,
                                            lr_shift=2), 7),
    "3-8-2-hardtanh-nearest": (NetConfig.from_strings("3-8-2", "hardtanh,identity", pes="8,1",
                                                      rounding="nearest"), 6),
    "6-5-5-5-2-all": (NetConfig.from_strings("6-5-5-5-2", "hardtanh,relu,leaky_relu:2,identity",
                                             pes="5,2,1,2", weight_format="2.8",
                                             master_extra_bits=4), 5),
    "7-9-4-multipliers": (NetConfig.from_strings("7-9-4", "leaky_relu,identity", pes="2,3",
                                                 mults="3,2"), 6),
    # the serial engine (one lane, every layer in turn): narrow formats, stochastic rounding;
    # four layers, every activation, nearest rounding
    "5-7-3-serial": (NetConfig.from_strings("5-7-3", "leaky_relu,identity", engine="serial",
                                            act_format="3.6", sens_format="2.7",
                                            weight_format="2.6", master_extra_bits=2,
                                            lr_shift=2), 7),
    "6-5-5-5-2-serial": (NetConfig.from_strings("6-5-5-5-2", "hardtanh,relu,leaky_relu:2,identity",
                                                engine="serial", weight_format="2.8",
                                                master_extra_bits=4, rounding="nearest"), 5),
}


@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("name", CONFIGS)
def test_rtl_equals_golden_model(sim, name, tmp_path):
    reason = missing_simulator(sim)
    if reason:
        pytest.fail(reason)  # a missing simulator is a broken set-up, not a skip
    cfg, samples = CONFIGS[name]
    tests, failures = run_cocotb(sim, cfg, samples, tmp_path, seed=len(name))
    assert tests == 4 and failures == 0, f"see {tmp_path}/{sim}-test.log"


@pytest.mark.parametrize("sim", SIMULATORS)
def test_ecp5_multiplier_blocks_equal_golden_model(sim, tmp_path):
    """The network as a ULX3S build elaborates it, its multipliers MULT18X18D blocks with their
    own operand and product registers (simulated with ``sim/models/MULT18X18D.v``): the same
    four scenarios, bit for bit."""
    cfg, samples = CONFIGS["7-9-4-multipliers"]
    tests, failures = run_cocotb(sim, cfg, samples, tmp_path, seed=3,
                                 platform=get_board("ulx3s-85f").platform())
    lanes = sum(min(cfg.mults[l - 1], len(cfg.rows_of_pe(l, p)))
                for l in range(1, cfg.L + 1) for p in range(cfg.pes[l - 1]))
    assert (tmp_path / f"{TOPLEVEL}.v").read_text().count("MULT18X18D #(") == 2 * lanes
    assert tests == 4 and failures == 0, f"see {tmp_path}/{sim}-test.log"
