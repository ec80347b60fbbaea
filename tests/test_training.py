import numpy as np
import pytest

from dyadic.hdl.config import NetConfig
from dyadic.host.datasets import load_digits, load, DatasetError, Dataset
from dyadic.host.device import open_device
from dyadic.host.training import run_training


def test_digits_is_bundled_and_well_formed():
    d = load_digits()
    assert d.x.shape == (1797, 64) and d.y.shape == (1797, 10)
    assert 0 <= d.x.min() and d.x.max() <= 1
    np.testing.assert_array_equal(np.argmax(d.y, 1), d.labels)
    train, test = d.split(0.2, seed=0)
    assert len(train) + len(test) == 1797 and len(test) == 359


@pytest.mark.parametrize("act, epochs, lr_shift", [("leaky_relu,identity", 10, 5),
                                                   ("relu,identity", 20, 7)])
def test_default_formats_train_within_two_points_of_float32(act, epochs, lr_shift):
    cfg = NetConfig.from_strings("64-16-10", act, lr_shift=lr_shift)
    data = load_digits()
    r = run_training(open_device("golden", cfg, len(data) + 1), cfg, data, epochs, 16, lr_shift,
                     seed=1)
    assert r["test_acc"] >= r["float32_test_acc"] - 0.02
    assert r["test_acc"] > 0.9
    losses = [e["loss"] for e in r["epochs"]]
    assert losses[-1] < losses[0]


def test_dataset_of_the_wrong_shape_is_rejected(tmp_path):
    cfg = NetConfig.from_strings("64-16-10", "relu,identity")
    with pytest.raises(DatasetError, match="64"):
        Dataset("x", np.zeros((5, 32)), np.zeros((5, 10))).check(cfg)
    path = tmp_path / "bad.npz"
    np.savez(path, x=np.zeros((5, 64)), y=np.zeros(4, dtype=int))
    with pytest.raises(DatasetError, match="same N"):
        load(str(path))
    with pytest.raises(DatasetError, match="not found"):
        load(str(tmp_path / "missing.npz"))


def test_a_small_data_memory_trains_on_what_fits_and_evaluates_in_pieces():
    cfg = NetConfig.from_strings("64-10", "identity", lr_shift=6)
    data = load_digits().subset(np.arange(300))
    small = open_device("golden", cfg, 150)     # 149 training slots and the scratch slot
    r = run_training(small, cfg, data, 2, 16, 6, seed=1)
    assert r["train_samples"] == 149
    # the held-out set (60) went in after the training set in pieces of the one free slot;
    # a device with room for all of it, holding the same weights, agrees exactly
    test = data.split(0.2, seed=0)[1]
    large = open_device("golden", cfg, 1000)
    large.write_params(*r["params"])
    assert small.evaluate(test.x, test.y) == large.evaluate(test.x, test.y)
