"""Boards: PLL settings, the resource check, the CLI's refusals, real synthesis and place and
route of a reduced configuration for each FPGA family, and a gate-level simulation of the
post-synthesis netlist against the golden model."""

import dataclasses
import json
import re

import pytest

from dyadic.boards import BoardError, get_board
from dyadic.boards.netlist import synthesize_netlist, MODEL_DEFINES
from dyadic.boards.inspect import critical_path, module_cells
from dyadic.boards.pll import ice40_pll, ecp5_pll, PLLError
from dyadic.boards.resources import check_fits, estimate
from dyadic.hdl.config import NetConfig
from dyadic.hdl.network import RelaxationNetwork
from dyadic.host.board_commands import preset_config
from dyadic.host.cli import main, build_parser, config_from
from dyadic.sim.runner import run_cocotb, missing_simulator, TOPLEVEL


@pytest.mark.parametrize("fin, fout", [(12, 30), (12, 36), (12, 48), (12, 24)])
def test_ice40_pll_reaches_the_clock_within_the_vco_limits(fin, fout):
    s = ice40_pll(fin, fout)
    p = s.params
    fpfd = fin / (p["DIVR"] + 1)
    fvco = fpfd * (p["DIVF"] + 1)
    assert 10 <= fpfd <= 133 and 533 <= fvco <= 1066
    assert s.fout_mhz == pytest.approx(fvco / 2 ** p["DIVQ"])
    assert abs(s.fout_mhz - fout) <= 0.02 * fout


@pytest.mark.parametrize("fin, fout", [(25, 100), (25, 125), (25, 60), (25, 50)])
def test_ecp5_pll_reaches_the_clock_within_the_vco_limits(fin, fout):
    s = ecp5_pll(fin, fout)
    p = s.params
    assert s.fout_mhz == pytest.approx(fin / p["CLKI_DIV"] * p["CLKFB_DIV"])
    assert 400 <= s.fout_mhz * p["CLKOP_DIV"] <= 800
    assert abs(s.fout_mhz - fout) <= 0.02 * fout


def test_impossible_clocks_are_refused():
    with pytest.raises(PLLError, match="cannot make 500 MHz .* nearest is 270 MHz"):
        ice40_pll(12, 500)
    with pytest.raises(PLLError, match="cannot make 1 MHz .* nearest is 3.125 MHz"):
        ecp5_pll(25, 1)
    with pytest.raises(PLLError, match="cannot make 48 MHz"):   # 46.875 is 2.3% off
        ecp5_pll(25, 48)


def test_timing_margin_is_refused_where_the_flow_would_drop_it():
    """The margin reaches nextpnr as an LPF preference: ECP5 boards take it, others refuse."""
    ice40, ecp5 = get_board("icebreaker"), get_board("ulx3s-85f")
    with pytest.raises(ValueError, match="timing_margin is applied on ECP5 boards only"):
        dataclasses.replace(ice40, timing_margin=1.05)
    assert dataclasses.replace(ecp5, timing_margin=1.1).timing_margin == 1.1
    assert ice40.timing_margin == 1


def test_estimate_counts_the_pe_multipliers_plus_the_loss_squarer():
    cfg = NetConfig.from_strings("6-5-3", "leaky_relu,identity", pes="3,2", mults="1,2")
    need = estimate(get_board("ulx3s-85f"), cfg, 16)
    assert need.dsps == cfg.multipliers + 1


def test_oversized_network_is_rejected_naming_what_does_not_fit():
    board = get_board("icebreaker")
    cfg = NetConfig.from_strings("64-16-10", "leaky_relu,identity", pes="16,10")
    with pytest.raises(BoardError) as e:
        check_fits(board, cfg, 64)
    message = str(e.value)
    # 26 PEs of two multipliers (weight, gradient) + the squarer against 8 SB_MAC16
    assert "multipliers: 53 needed, 8 available (45 too many)" in message
    assert "block RAM" in message and "icebreaker" in message


def test_data_set_too_big_for_the_spram_is_rejected():
    board = get_board("icebreaker")
    cfg = NetConfig.from_strings("4-3-2", pes="1,1")
    # (4 + 2) words per sample in two memories: x needs 4 SPRAMs at 65,536 samples...
    with pytest.raises(BoardError, match="data set: .* kbit of SPRAM"):
        check_fits(board, cfg, 65536)


def test_build_cli_refuses_with_one_line(capsys):
    assert main(["build", "--board", "icebreaker", "--net", "64-16-10", "--pes", "16,10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not fit the icebreaker" in err
    assert main(["build", "--board", "ulx3s-85f", "--net", "4-3-2", "--clock", "1"]) == 2
    assert "cannot make 1 MHz" in capsys.readouterr().err


def test_logic_that_does_not_fit_is_named_after_placement(tmp_path, capsys):
    # passes the check before synthesis (30 of 30 block RAMs, 5 of 8 DSPs) and synthesises;
    # nextpnr then finds about 154% of the UP5K's logic cells needed
    args = ["build", "--board", "icebreaker", "--net", "64-16-10", "--act",
            "leaky_relu,identity", "--pes", "1,1", "--rounding", "nearest",
            "--master-bits", "4", "--build-dir", str(tmp_path)]
    for fmt in ("--act-format", "--weight-format", "--sens-format"):
        args += [fmt, "2.6"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not fit the icebreaker: logic cells: " in err
    needed = int(err.split("logic cells: ")[1].split()[0])
    assert needed > 5280 and f"{needed - 5280} too many" in err


def test_program_without_a_bitstream_or_tool_says_which(tmp_path, capsys, monkeypatch):
    assert main(["program", "--board", "icebreaker", "--bitstream",
                 str(tmp_path / "none.bin")]) == 2
    assert "no bitstream at" in capsys.readouterr().err
    bitstream = tmp_path / "x.bin"
    bitstream.write_bytes(b"\0")
    monkeypatch.setenv("ICEPROG", "iceprog-not-installed")
    assert main(["program", "--board", "icebreaker", "--bitstream", str(bitstream)]) == 2
    assert "iceprog-not-installed is not installed" in capsys.readouterr().err


# What CI builds, one per family, the whole flow in about two minutes each: the iCEBreaker
# preset at its 30 MHz and its board's placement seed (the 64-16-10 digits network on the
# serial engine, 95.6% of the UP5K's logic cells; 31.2 MHz reached, placements at this fill
# vary by about 10% with the design); ECP5 place and route grows quickly
# with the design, so CI builds a reduced configuration with two PEs, at the 100 MHz goal:
# 112.6 reached at nextpnr's seed 1 (session 20; session 19's netlist 113.3, and 94.0, 113.4
# and 104.1 at seeds 2, 3 and 4; earlier netlists 82.4-116.2, the status counters' paths or
# the reset's fabric net drawn across the chip), so the seed is pinned, and a design change
# may need another.
CI_BUILDS = {
    "ice40": ["--board", "icebreaker", "--clock", "30"],
    "ecp5": ["--board", "ulx3s-85f", "--net", "4-3-2", "--act", "leaky_relu,identity",
             "--pes", "1,1", "--samples", "16", "--clock", "100", "--seed", "1"],
}


@pytest.mark.parametrize("family", sorted(CI_BUILDS))
def test_ci_build_places_routes_and_meets_timing(family, tmp_path, capsys):
    assert main(["build", *CI_BUILDS[family], "--build-dir", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    clock = float(CI_BUILDS[family][CI_BUILDS[family].index("--clock") + 1])
    assert report["timing_met"] and report["fmax_mhz"] >= report["target_mhz"] == clock
    assert set(report["resources"]) >= {"luts", "ffs", "dsps", "ram_bits"}
    for used, available in report["resources"].values():
        assert 0 <= used <= available
    assert report["resources"]["luts"][0] > 500 and report["resources"]["dsps"][0] >= 2
    # the check before synthesis counted what the build used (the iCE40's SPRAM aside)
    args = build_parser().parse_args(["build", *CI_BUILDS[family]])
    board = get_board(args.board)
    need = estimate(board, preset_config(board, args, config_from),
                    args.samples or board.preset["samples"])
    assert need.dsps == report["resources"]["dsps"][0]
    assert need.ram_blocks * board.capacity.ram_block_bits == report["resources"]["ram_bits"][0]
    bitstream = tmp_path / report["bitstream"].split("/")[-1]
    assert bitstream.stat().st_size > 30_000
    assert json.loads((tmp_path / "report.json").read_text())["fmax_mhz"] == report["fmax_mhz"]
    assert f"--seed {report['seed']} " in (tmp_path / "build_dyadic.sh").read_text()
    # where the time and the cells went, as the README quotes them (dyadic.boards.inspect)
    if family == "ecp5":
        path = critical_path(tmp_path)
        assert sum(delay for _, delay, _, _ in path) == pytest.approx(
            1000 / report["fmax_mhz"], abs=0.01)
        assert any(".py:" in source for *_, source in path)
        # nextpnr timed the clock with the board's margin (its own constraint from the PLL
        # would be the clock itself: the preference must name the net synthesis left)
        timed = re.findall(r"Max frequency for clock .*\((?:PASS|FAIL) at ([\d.]+) MHz\)",
                           (tmp_path / "dyadic.tim").read_text())
        assert timed and float(timed[-1]) == pytest.approx(clock * board.timing_margin, abs=0.02)
        assert board.timing_margin > 1
    else:
        counts = module_cells(tmp_path)
        flat = json.loads((tmp_path / "dyadic.stat.json").read_text())["design"]
        flat_luts = flat["num_cells_by_type"]["SB_LUT4"]
        # with the hierarchy kept nothing is optimised across modules: a little more
        assert 0.95 * flat_luts <= sum(luts for luts, _ in counts.values()) <= 1.15 * flat_luts
        # the preset's organisation: the serial engine, not a layer's PEs
        assert any(module.endswith("network.engine") for module in counts)
        assert not any("layer1" in module for module in counts)


@pytest.mark.skipif(missing_simulator("icarus") is not None, reason="no Icarus")
@pytest.mark.parametrize("family, net", [("ice40", "5-7-3"), ("ice40", "preset")])
def test_gate_level_netlist_equals_golden_model(family, net, tmp_path):
    """The post-synthesis netlist in Icarus with the vendor cell models: every register after
    every relaxation step and the gradients, bit for bit against the golden model; on a
    two-layer network (backward pass, skew memory) and on the iCEBreaker preset."""
    cfg = (get_board("icebreaker").config() if net == "preset" else
           NetConfig.from_strings(net, "leaky_relu,identity", pes="3,2"))
    sources = synthesize_netlist(RelaxationNetwork(cfg, 4), family, tmp_path, TOPLEVEL)
    netlist = sources[0].read_text()
    for cell in {"ice40": ("SB_LUT4", "SB_MAC16", "SB_RAM40_4K")}[family]:
        assert cell in netlist   # mapped to the vendor's cells, not behavioural Verilog
    tests, failures = run_cocotb("icarus", cfg, 4, tmp_path, sources=sources,
                                 defines=MODEL_DEFINES[family],
                                 testcase="every_register_after_every_step")
    assert (tests, failures) == (1, 0)
