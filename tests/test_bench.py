"""The bench's NumPy baseline computes real SGD steps: one step equals float64 backprop's."""

import numpy as np

from dyadic.hdl.config import NetConfig
from dyadic.host import float_model
from dyadic.sim.bench import numpy_step


def test_numpy_step_is_the_sgd_step_of_float_backprop():
    cfg = NetConfig.from_strings("6-5-3", "leaky_relu,identity")
    rng = np.random.default_rng(0)
    Ws, bs = float_model.lecun_init(cfg.sizes, rng)
    x, y = rng.uniform(0, 1, (4, 6)), rng.uniform(0, 1, (4, 3))
    eta = 2.0 ** -cfg.lr_shift
    dWs, dbs, _, _ = float_model.backprop(Ws, bs, cfg.activations, x, y)
    W32 = [W.astype(np.float32) for W in Ws]
    b32 = [b.astype(np.float32) for b in bs]
    numpy_step(W32, b32, cfg.activations, x.astype(np.float32), y.astype(np.float32),
               np.float32(eta))
    for W, dW, got in zip(Ws, dWs, W32):
        # float32 against float64: a few ulps of the O(1) values involved
        np.testing.assert_allclose(got, W - eta * dW, atol=1e-5)
    for b, db, got in zip(bs, dbs, b32):
        np.testing.assert_allclose(got, b - eta * db, atol=1e-5)

