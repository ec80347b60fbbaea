"""The command line as a user meets it: JSON shapes, exactness, one-line errors."""

import json
import subprocess
import sys

import numpy as np
import pytest

from dyadic.host import float_model as fm
from dyadic.host.cli import main


def run_json(capsys, *argv):
    assert main(list(argv) + ["--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("device", ["golden", "float"])
@pytest.mark.parametrize("net, act", [("4-3-2", "leaky_relu,identity"),
                                      ("5-7-3-4", "leaky_relu,hardtanh,identity")])
def test_relax_reports_the_exactness_table(capsys, device, net, act):
    out = run_json(capsys, "relax", "--device", device, "--net", net, "--act", act,
                   "--init", "random", "--seed", "5")
    L = out["L"]
    assert L == len(net.split("-")) - 1
    assert len(out["errors"]["a"]) == 2 * L + 3 and len(out["errors"]["a"][0]) == L
    assert out["exact_from"]["a"] == list(range(1, L + 1))
    assert out["exact_from"]["lam"] == [2 * L + 1 - l for l in range(1, L + 1)]


def test_relax_leaky_step_never_becomes_exact(capsys, tmp_path):
    out = run_json(capsys, "relax", "--device", "float", "--h", "0.5", "--steps", "12",
                   "--plot", str(tmp_path / "r.png"))
    assert out["exact_from"]["lam"] == [None, None]
    assert (tmp_path / "r.png").stat().st_size > 1000


def test_gradient_matches_float_backprop_within_the_formats(capsys, tmp_path):
    rng = np.random.default_rng(7)
    wf = 2.0 ** -10  # parameters on a grid every format represents exactly
    Ws = [np.round(rng.uniform(-1, 1, (3, 4)) / wf) * wf, np.round(rng.uniform(-1, 1, (2, 3)) / wf) * wf]
    bs = [np.round(rng.uniform(-.5, .5, 3) / wf) * wf, np.round(rng.uniform(-.5, .5, 2) / wf) * wf]
    x, y = np.round(rng.uniform(0, 1, 4) / wf) * wf, np.round(rng.uniform(0, 1, 2) / wf) * wf
    np.savez(tmp_path / "p.npz", W1=Ws[0], b1=bs[0], W2=Ws[1], b2=bs[1])
    np.savez(tmp_path / "s.npz", x=x, y=y)
    args = ["gradient", "--params", str(tmp_path / "p.npz"), "--sample", str(tmp_path / "s.npz"),
            "--act", "leaky_relu,identity"]
    golden = run_json(capsys, *args, "--device", "golden")
    exact = run_json(capsys, *args, "--device", "float")
    dWs, dbs, a_L, _ = fm.backprop(Ws, bs, fm_acts("leaky_relu,identity"), x, y)
    np.testing.assert_array_equal(exact["dW"][1], dWs[1])
    # Golden: a few half-ulp roundings (2^-13 activations, 2^-15 sensitivities) propagated
    # through weights below 1 in magnitude and fan-in <= 4: well inside 2^-9.
    for got, want in zip(golden["dW"] + golden["db"], dWs + dbs):
        np.testing.assert_allclose(got, want, rtol=0, atol=2.0 ** -9)
    np.testing.assert_allclose(golden["output"], a_L, rtol=0, atol=2.0 ** -9)


def fm_acts(text):
    from dyadic.hdl.config import Activation
    return [Activation.parse(a) for a in text.split(",")]


def test_train_json_shape(capsys, tmp_path):
    out = run_json(capsys, "train", "--device", "golden", "--epochs", "2", "--batch", "32",
                   "--lr-shift", "6",
                   "--save", str(tmp_path / "w.npz"))
    assert len(out["epochs"]) == 2 and {"loss", "train_acc"} <= set(out["epochs"][0])
    assert 0.5 < out["test_acc"] <= 1 and 0.5 < out["float32_test_acc"] <= 1
    with np.load(tmp_path / "w.npz") as w:
        assert w["W1"].shape == (16, 64) and w["b2"].shape == (10,)


@pytest.mark.parametrize("argv, message", [
    (["train", "--net", "32-16-10"], "use --net 64-"),  # wrong dataset shape
    (["train", "--dataset", "nowhere.npz"], "not found"),
    (["train", "--device", "/dev/ttyNOPE"], "cannot open serial port /dev/ttyNOPE"),
    (["train", "--device", "fpga"], "unknown device"),
    (["train", "--batch", "999"], "batch size 999 not allowed"),
    (["relax", "--net", "4-3-2", "--act", "relu"], "need 2 activation"),
    (["relax", "--h", "0.3"], "h = 2^-k"),
    (["gradient", "--params", "missing.npz", "--sample", "missing.npz"], "not found"),
    (["gradient", "--params", "/dev/null", "--sample", "/dev/null"], "cannot read"),
    (["train", "--dataset", "/dev/null"], "cannot read"),
    (["train", "--act-format", "4x12"], "INT.FRAC"),
])
def test_bad_input_is_one_line_not_a_traceback(argv, message):
    proc = subprocess.run([sys.executable, "-m", "dyadic.host.cli"] + argv,
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
