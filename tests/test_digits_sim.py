"""The main job on the simulated board (slow: `make test-slow`)."""

import pytest

from dyadic.hdl.config import NetConfig
from dyadic.host.datasets import load_digits
from dyadic.host.device import open_device
from dyadic.host.training import run_training, samples_needed


@pytest.mark.slow
def test_digits_on_the_simulated_board_reaches_94_percent():
    cfg = NetConfig.from_strings("64-16-10", "leaky_relu,identity", pes="8,2")
    data = load_digits()
    device = open_device("sim", cfg, samples_needed(data))
    try:
        result = run_training(device, cfg, data, epochs=10, batch=16, lr_shift=5, seed=1)
    finally:
        device.close()
    assert result["test_acc"] >= 0.94
    assert result["test_acc"] >= result["float32_test_acc"] - 0.02
