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
