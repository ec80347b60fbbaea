"""Finite differences <-> float backprop <-> float dyadic relaxation (DESIGN.md section 5)."""

import numpy as np
import pytest

from dyadic.hdl.config import Activation
from dyadic.host import float_model as fm
from conftest import random_config

SMOOTH = ("leaky_relu", "identity")  # derivatives never vanish: every register is generic


def _net(cfg, rng):
    Ws, _ = fm.lecun_init(cfg.sizes, rng)
    bs = [rng.normal(scale=0.3, size=n) for n in cfg.sizes[1:]]
    x, y = rng.normal(size=cfg.sizes[0]), rng.normal(size=cfg.sizes[-1])
    return Ws, bs, x, y


def _total_loss(Ws, bs, acts, x, y):
    a, _ = fm.forward(Ws, bs, acts, x)
    return float(np.sum(fm.loss(a[-1], y)))


def test_backprop_matches_finite_differences(rng):
    checked = 0
    for _ in range(20):
        cfg = random_config(rng)
        Ws, bs, x, y = _net(cfg, rng)
        # Central differences are only valid away from the activations' kinks.
        zs = [x]
        for W, b, act in zip(Ws, bs, cfg.activations):
            z = W @ zs[-1] + b
            if np.min(np.abs(z)) < 1e-3 or np.min(np.abs(np.abs(z) - 1)) < 1e-3:
                break
            zs.append(fm.activate(act, z))
        else:
            dWs, dbs, _, _ = fm.backprop(Ws, bs, cfg.activations, x, y)
            eps = 1e-6
            for l in range(cfg.L):
                for params, grads in ((Ws, dWs), (bs, dbs)):
                    numeric = np.zeros_like(params[l])
                    for idx in np.ndindex(params[l].shape):
                        old = params[l][idx]
                        params[l][idx] = old + eps
                        up = _total_loss(Ws, bs, cfg.activations, x, y)
                        params[l][idx] = old - eps
                        down = _total_loss(Ws, bs, cfg.activations, x, y)
                        params[l][idx] = old
                        numeric[idx] = (up - down) / (2 * eps)
                    np.testing.assert_allclose(grads[l], numeric, rtol=1e-5, atol=1e-7)
            checked += 1
    assert checked >= 10


def test_batched_backprop_is_the_sum_of_samples(rng):
    cfg = random_config(rng, L=3)
    Ws, bs, _, _ = _net(cfg, rng)
    X, Y = rng.normal(size=(7, cfg.sizes[0])), rng.normal(size=(7, cfg.sizes[-1]))
    dWs, dbs, _, _ = fm.backprop(Ws, bs, cfg.activations, X, Y)
    for k in range(7):
        one = fm.backprop(Ws, bs, cfg.activations, X[k], Y[k])
        dWs = [d - o for d, o in zip(dWs, one[0])]
        dbs = [d - o for d, o in zip(dbs, one[1])]
    assert max(np.max(np.abs(d)) for d in dWs + dbs) < 1e-12


@pytest.mark.parametrize("L", range(1, 7))
def test_relaxation_is_exact_at_2L_and_not_at_2L_minus_1(rng, L):
    for _ in range(5):
        cfg = random_config(rng, L=L, acts=SMOOTH)
        Ws, bs, x, y = _net(cfg, rng)
        start = fm.random_state(cfg.sizes, cfg.activations, rng, scale=3.0)
        traj = fm.relax(Ws, bs, cfg.activations, x, y, start, 2 * L)
        dWs, dbs, a_L, lam = fm.backprop(Ws, bs, cfg.activations, x, y)
        a, _ = fm.forward(Ws, bs, cfg.activations, x)
        for l in range(1, L + 1):
            # Exact means bit-equal floats: the same operations on the same inputs.
            np.testing.assert_array_equal(traj[l]["a"][l - 1], a[l])
            np.testing.assert_array_equal(traj[2 * L + 1 - l]["lam"][l - 1], lam[l])
            np.testing.assert_array_equal(traj[2 * L]["lam"][l - 1], lam[l])
            assert not np.array_equal(traj[l - 1]["a"][l - 1], a[l])
            assert not np.array_equal(traj[2 * L - l]["lam"][l - 1], lam[l])
        assert not np.array_equal(traj[2 * L - 1]["lam"][0], lam[1])
        # Gradients read out of the registers as local outer products at step 2L.
        final = traj[2 * L]
        for l in range(1, L + 1):
            a_prev = x if l == 1 else final["a"][l - 2]
            np.testing.assert_array_equal(np.outer(final["lam"][l - 1], a_prev), dWs[l - 1])


def test_design_worked_example():
    relu, ident = Activation("relu"), Activation("identity")
    Ws = [np.array([[1, .5], [1, -1]]), np.array([[1.5, -2]])]
    bs = [np.zeros(2), np.array([.5])]
    x, y = np.array([1., 2.]), np.array([1.5])
    start = {"a": [np.array([-1., 3.]), np.array([10.])], "d": [np.zeros(2), np.zeros(1)],
             "lam": [np.array([7., -7.]), np.array([-5.])]}
    dWs, _, a_L, lam = fm.backprop(Ws, bs, (relu, ident), x, y)
    traj = fm.relax(Ws, bs, (relu, ident), x, y, start, 4)
    np.testing.assert_array_equal(traj[1]["a"][0], [2, 0])
    np.testing.assert_array_equal(traj[2]["a"][1], [3.5])
    np.testing.assert_array_equal(traj[3]["lam"][1], [2])
    np.testing.assert_array_equal(traj[4]["lam"][0], [3, 0])
    assert not np.array_equal(traj[3]["lam"][0], [3, 0])
    np.testing.assert_array_equal(dWs[1], [[4, 0]])
    np.testing.assert_array_equal(dWs[0], [[3, 6], [0, 0]])


def _state_error(traj_state, a, lam):
    return max(max(np.max(np.abs(s - r)) for s, r in zip(traj_state["a"], a[1:])),
               max(np.max(np.abs(s - r)) for s, r in zip(traj_state["lam"], lam[1:])))


@pytest.mark.parametrize("h", [0.25, 0.5, 0.9])
def test_leaky_regime_converges_geometrically_but_not_in_finite_time(rng, h):
    cfg = random_config(rng, L=3, acts=("identity",))
    Ws, bs, x, y = _net(cfg, rng)
    start = fm.random_state(cfg.sizes, cfg.activations, rng, scale=3.0)
    traj = fm.relax(Ws, bs, cfg.activations, x, y, start, 400, h)
    a, _ = fm.forward(Ws, bs, cfg.activations, x)
    *_, lam = fm.backprop(Ws, bs, cfg.activations, x, y)
    errs = [_state_error(s, a, lam) for s in traj]
    assert errs[2 * cfg.L] > 0 and errs[4 * cfg.L] > 0  # not exact where h = 1 would be
    assert errs[400] < 1e-9 * errs[0]
    # Geometric: every window of w steps (while above round-off) shrinks the error by a
    # constant factor; for this linear system the rate is (1 - h) up to a polynomial factor.
    w = int(np.ceil(8 / h))
    windows = [k for k in range(2 * cfg.L, 400 - w, w) if errs[k + w] > 1e-12 * errs[0]]
    assert windows
    assert all(errs[k + w] < 0.5 * errs[k] for k in windows)


@pytest.mark.parametrize("h", [2.0, 2.5])
def test_step_size_two_or_more_diverges(rng, h):
    cfg = random_config(rng, L=3, acts=("identity",))
    Ws, bs, x, y = _net(cfg, rng)
    start = fm.random_state(cfg.sizes, cfg.activations, rng)
    traj = fm.relax(Ws, bs, cfg.activations, x, y, start, 200, h)
    a, _ = fm.forward(Ws, bs, cfg.activations, x)
    *_, lam = fm.backprop(Ws, bs, cfg.activations, x, y)
    assert _state_error(traj[200], a, lam) > 10 * _state_error(traj[20], a, lam)
