"""The exactness experiment behind ``dyadic relax``: run the relaxation from arbitrary register
contents and measure, per step, how far every ``a_l`` and ``lam_l`` is from backpropagation
computed layer by layer in the same arithmetic."""

import numpy as np

from . import float_model
from .device_model import DeviceModel

__all__ = ["relax_errors", "exact_from"]


def _max_abs(u, v):
    return float(np.max(np.abs(np.asarray(u, float) - np.asarray(v, float))))


def relax_errors(trajectory, reference_a, reference_lam, scale_a=1.0, scale_lam=1.0):
    """``{"a": [[err per layer] per step], "lam": ...}`` for a trajectory of states;
    references indexed by layer ``1..L`` (index 0 unused); errors scaled to real units."""
    L = len(trajectory[0]["a"])
    return {
        "a": [[_max_abs(s["a"][l - 1], reference_a[l]) * scale_a for l in range(1, L + 1)]
              for s in trajectory],
        "lam": [[_max_abs(s["lam"][l - 1], reference_lam[l]) * scale_lam
                 for l in range(1, L + 1)] for s in trajectory],
    }


def exact_from(errors):
    """Per layer, the first step from which the error stays exactly zero to the end of the run,
    or None."""
    steps = len(errors)
    result = []
    for l in range(len(errors[0])):
        first = None
        for s in range(steps - 1, -1, -1):
            if errors[s][l] != 0.0:
                break
            first = s
        result.append(first)
    return result


def run_float(Ws, bs, acts, x, y, steps, h, rng):
    """Float64 relaxation from a random start (``rng``) or zeros (``rng=None``) against float64
    backprop."""
    sizes = [Ws[0].shape[1]] + [W.shape[0] for W in Ws]
    if rng is None:
        start = {k: [np.zeros(n) for n in sizes[1:]] for k in ("a", "d", "lam")}
    else:
        start = float_model.random_state(sizes, acts, rng)
    trajectory = float_model.relax(Ws, bs, acts, x, y, start, steps, h)
    a, _ = float_model.forward(Ws, bs, acts, x)
    *_, lam = float_model.backprop(Ws, bs, acts, x, y)
    return relax_errors(trajectory, a, lam)


def run_device(device, cfg, Ws, bs, x, y, steps, h_shift, rng):
    """The device's trace mode from random register contents (``rng``) or zeros, against the
    bit-exact model's layer-by-layer computation; errors in real units (0 means bit-equal)."""
    reference = DeviceModel(cfg)
    reference.set_params(Ws, bs)
    x_raw, y_raw = cfg.act_format.quantise(x), cfg.act_format.quantise(y)
    if rng is None:
        start = {k: [np.zeros(n, np.int64) for n in cfg.sizes[1:]] for k in ("a", "d", "lam")}
    else:
        start = reference.random_state(rng)
    trajectory = device.relax(x_raw, y_raw, start, steps, h_shift)
    ref = reference.gradient(x_raw, y_raw)
    return relax_errors(trajectory, ref["a"], ref["lam"], cfg.act_format.ulp,
                        cfg.sens_format.ulp)
