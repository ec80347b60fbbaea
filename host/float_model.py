"""Float64 reference models: backpropagation and the dyadic relaxation (DESIGN.md section 1).

Parameters are lists ``Ws[l-1]`` of shape ``(n_l, n_{l-1})`` and ``bs[l-1]`` of shape ``(n_l,)``;
activations are :class:`dyadic.hdl.config.Activation`. A sample is ``x`` of shape ``(n_0,)`` and
``y`` of shape ``(n_L,)``; batched functions take ``(B, n)`` arrays. Loss: ``C = |a_L - y|^2 / 2``.
"""

import numpy as np

__all__ = ["activate", "derivative", "forward", "backprop", "loss", "random_state",
           "relax_step", "relax", "lecun_init"]


def activate(act, z):
    """``f(z)`` elementwise."""
    if act.name == "relu":
        return np.maximum(z, 0.0)
    if act.name == "leaky_relu":
        return np.where(z > 0, z, z * 2.0 ** -act.shift)
    if act.name == "hardtanh":
        return np.clip(z, -1.0, 1.0)
    return z * 1.0


def derivative(act, z):
    """``f'(z)`` elementwise, with the conventions of :class:`Activation`."""
    if act.name == "relu":
        return (z > 0).astype(float)
    if act.name == "leaky_relu":
        return np.where(z > 0, 1.0, 2.0 ** -act.shift)
    if act.name == "hardtanh":
        return ((z > -1.0) & (z < 1.0)).astype(float)
    return np.ones_like(z, dtype=float)


def _z(W, b, a_prev):
    return a_prev @ W.T + b


def forward(Ws, bs, acts, x):
    """Returns ``(a, d)``: lists of ``a_0..a_L`` and ``d_1..d_L`` (``d[0]`` is None)."""
    a, d = [np.asarray(x, dtype=float)], [None]
    for W, b, act in zip(Ws, bs, acts):
        z = _z(W, b, a[-1])
        a.append(activate(act, z))
        d.append(derivative(act, z))
    return a, d


def loss(a_L, y):
    """``|a_L - y|^2 / 2`` per sample."""
    return 0.5 * np.sum((a_L - y) ** 2, axis=-1)


def backprop(Ws, bs, acts, x, y):
    """Gradients of the loss (summed over the batch if ``x`` is ``(B, n_0)``).

    Returns ``(dWs, dbs, a_L, lams)`` with ``lams[l]`` the sensitivities ``dC/dz_l``
    (``lams[0]`` is None)."""
    a, d = forward(Ws, bs, acts, x)
    L = len(Ws)
    lam = [None] * (L + 1)
    lam[L] = d[L] * (a[L] - y)
    for l in range(L - 1, 0, -1):
        lam[l] = d[l] * (lam[l + 1] @ Ws[l])
    dWs, dbs = [], []
    for l in range(1, L + 1):
        if np.ndim(x) == 1:
            dWs.append(np.outer(lam[l], a[l - 1]))
            dbs.append(lam[l].copy())
        else:
            dWs.append(lam[l].T @ a[l - 1])
            dbs.append(lam[l].sum(axis=0))
    return dWs, dbs, a[L], lam


def random_state(sizes, acts, rng, scale=1.0):
    """Arbitrary register contents: ``{"a": [a_1..a_L], "d": [...], "lam": [...]}``."""
    L = len(sizes) - 1
    return {
        "a": [rng.normal(scale=scale, size=sizes[l]) for l in range(1, L + 1)],
        "d": [rng.normal(scale=scale, size=sizes[l]) for l in range(1, L + 1)],
        "lam": [rng.normal(scale=scale, size=sizes[l]) for l in range(1, L + 1)],
    }


def relax_step(Ws, bs, acts, x, y, state, h=1.0):
    """One synchronous relaxation step: every register from its neighbours' *old* values.

    ``s <- G(s)`` for ``h == 1`` (the exact regime), ``s <- s + h (G(s) - s)`` otherwise. The
    derivative ``d_l`` is latched from the same ``z`` as ``a_l`` (it is not integrated)."""
    L = len(Ws)
    a_old = [np.asarray(x, dtype=float)] + state["a"]
    d_old, lam_old = [None] + state["d"], [None] + state["lam"]
    target_a, new_d, target_lam = [], [], []
    for l in range(1, L + 1):
        z = _z(Ws[l - 1], bs[l - 1], a_old[l - 1])
        target_a.append(activate(acts[l - 1], z))
        new_d.append(derivative(acts[l - 1], z))
        if l == L:
            target_lam.append(d_old[L] * (a_old[L] - y))
        else:
            target_lam.append(d_old[l] * (lam_old[l + 1] @ Ws[l]))
    if h == 1.0:
        return {"a": target_a, "d": new_d, "lam": target_lam}
    blend = lambda old, new: [o + h * (n - o) for o, n in zip(old, new)]
    return {"a": blend(state["a"], target_a), "d": new_d,
            "lam": blend(state["lam"], target_lam)}


def relax(Ws, bs, acts, x, y, state, steps, h=1.0):
    """Trajectory ``[state_0, state_1, ..., state_steps]`` (``state_0`` is the start)."""
    trajectory = [state]
    for _ in range(steps):
        trajectory.append(relax_step(Ws, bs, acts, x, y, trajectory[-1], h))
    return trajectory


def lecun_init(sizes, rng):
    """LeCun-uniform weights (variance ``1/n_in``) and zero biases."""
    Ws, bs = [], []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        limit = np.sqrt(3.0 / n_in)
        Ws.append(rng.uniform(-limit, limit, size=(n_out, n_in)))
        bs.append(np.zeros(n_out))
    return Ws, bs
