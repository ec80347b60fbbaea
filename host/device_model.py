"""Bit-exact fixed-point model of the accelerator (the golden model the RTL must equal).

All values are raw NumPy int64 in the formats of :class:`~dyadic.hdl.config.NetConfig`:

* ``x``, ``y``, ``a_l``: ``act_format``; ``lam_l``: ``sens_format``;
* weights: a master matrix per layer of shape ``(n_l, n_{l-1} + 1)`` in ``master_format`` with
  the bias as last column; the multipliers see ``floor(master / 2**master_extra_bits)``
  (``weight_format``), and the bias multiplies a constant 1.0 input;
* ``d_l`` as a derivative code (:data:`D_ZERO`, :data:`D_ONE`, :data:`D_SLOPE` = ``2**-k``), so
  multiplying by ``d`` is a select and a shift, never a multiplier;
* gradient accumulators: exact, ``gradient_frac`` fraction bits, bias last column.

Arithmetic, step by step (one rounding, one saturation per register write, counted):

    z_l   = W_l [a_{l-1}; 1]                        exact, forward_frac bits
    a_l   = sat(round(f(z_l)))                      f applied before rounding (leaky: shift)
    lam_L = sat(round(d_L (a_L - y)))               from act_frac to sens_frac
    lam_l = sat(round(d_l (W_{l+1}^T lam_{l+1})))   from backward_frac to sens_frac
    G_l  += lam_l [a_{l-1}; 1]^T                    exact
    W_l   = sat(W_l - round_lfsr(2**-lr_shift G_l)) see dyadic.hdl.lfsr for the random bits

A relaxation step with ``h = 2**-k`` (``k > 0``) writes ``s + round((G(s) - s) / 2**k)``, which
lies between ``s`` and ``G(s)`` and so needs no saturation.
"""

from collections import Counter, deque

import numpy as np

from ..hdl.fixed import round_shift, floor_shift, saturate
from ..hdl.lfsr import xorshift32, seed_state, MASK
from ..hdl.regmap import Status

__all__ = ["DeviceModel", "activate", "D_ZERO", "D_ONE", "D_SLOPE", "SATURATION_COUNTERS"]

#: The device's status counter of each kind of saturation event the model counts.
SATURATION_COUNTERS = {"activation": Status.SAT_ACTIVATION,
                       "sensitivity": Status.SAT_SENSITIVITY, "weight": Status.SAT_WEIGHT}

D_ZERO, D_ONE, D_SLOPE = 0, 1, 2


def _valid_codes(act):
    return {"relu": [D_ZERO, D_ONE], "hardtanh": [D_ZERO, D_ONE],
            "leaky_relu": [D_ONE, D_SLOPE], "identity": [D_ONE]}[act.name]


def activate(act, z, frac, fmt):
    """The activation unit: exact ``z`` with ``frac`` fraction bits -> ``(a, d, saturations)``,
    ``a = sat(round(f(z)))`` in ``fmt`` and ``d`` the derivative code."""
    to_act = lambda v, extra=0: round_shift(v, frac + extra - fmt.frac_bits)
    if act.name == "relu":
        rounded = to_act(np.maximum(z, 0))
        d = np.where(z > 0, D_ONE, D_ZERO)
    elif act.name == "leaky_relu":
        rounded = np.where(z > 0, to_act(z), to_act(z, act.shift))
        d = np.where(z > 0, D_ONE, D_SLOPE)
    elif act.name == "hardtanh":
        one = 1 << frac
        rounded = to_act(np.clip(z, -one, one))
        d = np.where((z > -one) & (z < one), D_ONE, D_ZERO)
    else:
        rounded = to_act(z)
        d = np.full(np.shape(z), D_ONE)
    a, n = saturate(rounded, fmt)
    return a, d.astype(np.int64), n


class DeviceModel:
    """The device's arithmetic and state for one :class:`NetConfig`.

    Attributes
    ----------
    weights : list of int64 arrays
        Master weights, ``weights[l-1]`` of shape ``(n_l, n_{l-1} + 1)``.
    saturations : Counter
        Saturation events by register kind: ``activation``, ``sensitivity``, ``weight``.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        self.weights = [np.zeros((cfg.sizes[l], cfg.row_length(l)), dtype=np.int64)
                        for l in range(1, cfg.L + 1)]
        self.saturations = Counter(activation=0, sensitivity=0, weight=0)
        # the last mini-batch's gradient sums: what the device's gradient memories hold
        # after a TRAIN
        self.last_gradients = [np.zeros_like(w) for w in self.weights]
        self.seed(1)

    # -- parameters ---------------------------------------------------------------------------
    def set_params(self, Ws, bs):
        """Load float parameters, rounded to the master format (saturating)."""
        mf = self.cfg.master_format
        self.weights = [mf.quantise(np.column_stack([W, b])) for W, b in zip(Ws, bs)]

    def params(self):
        """Float ``(Ws, bs)`` of the master weights."""
        mf = self.cfg.master_format
        return ([mf.to_float(w[:, :-1]) for w in self.weights],
                [mf.to_float(w[:, -1]) for w in self.weights])

    def effective(self, l):
        """Weights of layer ``l`` as the multipliers see them (``weight_format`` raw)."""
        return floor_shift(self.weights[l - 1], self.cfg.master_extra_bits)

    # -- the three register updates -----------------------------------------------------------
    def _count(self, kind, n):
        self.saturations[kind] += n

    def forward_layer(self, l, a_prev):
        """``a_{l-1}`` (``(..., n_{l-1})``) -> ``(a_l, d_l)``."""
        cfg = self.cfg
        W = self.effective(l)
        z = a_prev @ W[:, :-1].T + W[:, -1] * cfg.act_format.one
        a, d, n = activate(cfg.activations[l - 1], z, cfg.forward_frac, cfg.act_format)
        self._count("activation", n)
        return a, d

    def _apply_derivative(self, l, value, frac, d):
        """``sat(round(d * value))`` into ``sens_format``; ``value`` has ``frac`` bits."""
        act, fmt = self.cfg.activations[l - 1], self.cfg.sens_format
        one = round_shift(value, frac - fmt.frac_bits)
        slope = round_shift(value, frac + act.shift - fmt.frac_bits)
        pick = np.where(d == D_ONE, one, np.where(d == D_SLOPE, slope, 0))
        lam, n = saturate(pick, fmt)
        self._count("sensitivity", n)
        return lam

    def output_sensitivity(self, a_L, d_L, y):
        """``lam_L = d_L (a_L - y)``."""
        return self._apply_derivative(self.cfg.L, a_L - y, self.cfg.act_format.frac_bits, d_L)

    def hidden_sensitivity(self, l, lam_next, d_l):
        """``lam_l = d_l (W_{l+1}^T lam_{l+1})``, ``l < L``."""
        partial = lam_next @ self.effective(l + 1)[:, :-1]
        return self._apply_derivative(l, partial, self.cfg.backward_frac, d_l)

    def with_bias_input(self, a_prev):
        """``[a_{l-1}; 1]``: the input a row's last (bias) weight multiplies."""
        one = np.full(a_prev.shape[:-1] + (1,), self.cfg.act_format.one, dtype=np.int64)
        return np.concatenate([a_prev, one], axis=-1)

    # -- one sample, in sequential order ------------------------------------------------------
    def gradient(self, x, y):
        """Layer by layer, as backprop would: returns dict with ``a`` (``a_0..a_L``), ``d``,
        ``lam`` (index ``l``; index 0 is None) and ``grads`` (``grads[l-1]`` of the shape of
        ``weights[l-1]``, ``gradient_frac`` bits). Works on one sample or a batch (summed)."""
        L = self.cfg.L
        a, d, lam = [np.asarray(x, dtype=np.int64)], [None], [None] * (L + 1)
        for l in range(1, L + 1):
            al, dl = self.forward_layer(l, a[-1])
            a.append(al)
            d.append(dl)
        lam[L] = self.output_sensitivity(a[L], d[L], np.asarray(y, dtype=np.int64))
        for l in range(L - 1, 0, -1):
            lam[l] = self.hidden_sensitivity(l, lam[l + 1], d[l])
        grads = []
        for l in range(1, L + 1):
            inp = self.with_bias_input(a[l - 1])
            grads.append(np.outer(lam[l], inp) if lam[l].ndim == 1 else lam[l].T @ inp)
        return {"a": a, "d": d, "lam": lam, "grads": grads}

    # -- the relaxation (trace mode) ----------------------------------------------------------
    def state_gradients(self, x, state):
        """``lam_l [a_{l-1}; 1]^T`` of the registers ``state`` (``a_0 = x``): the gradients a
        trace step accumulates (backpropagation's once the state is exact)."""
        inputs = [np.asarray(x, dtype=np.int64)] + list(state["a"][:-1])
        return [np.outer(lam, self.with_bias_input(a)) for lam, a in zip(state["lam"], inputs)]

    def random_state(self, rng):
        """Arbitrary register contents within each register's format."""
        cfg = self.cfg
        af, sf = cfg.act_format, cfg.sens_format
        return {
            "a": [rng.integers(af.raw_min, af.raw_max + 1, size=n) for n in cfg.sizes[1:]],
            "d": [rng.choice(_valid_codes(act), size=n)
                  for act, n in zip(cfg.activations, cfg.sizes[1:])],
            "lam": [rng.integers(sf.raw_min, sf.raw_max + 1, size=n) for n in cfg.sizes[1:]],
        }

    def relax_step(self, x, y, state, h_shift=0):
        """One synchronous step from ``state`` (dict of lists ``a``, ``d``, ``lam`` for
        ``l = 1..L``); step size ``h = 2**-h_shift``."""
        L = self.cfg.L
        a_old = [np.asarray(x, dtype=np.int64)] + list(state["a"])
        d_old, lam_old = [None] + list(state["d"]), [None] + list(state["lam"])
        new = {"a": [], "d": [], "lam": []}
        for l in range(1, L + 1):
            al, dl = self.forward_layer(l, a_old[l - 1])
            if l == L:
                lam = self.output_sensitivity(a_old[L], d_old[L], np.asarray(y, dtype=np.int64))
            else:
                lam = self.hidden_sensitivity(l, lam_old[l + 1], d_old[l])
            if h_shift:
                al = self._leak(a_old[l], al, h_shift)
                lam = self._leak(lam_old[l], lam, h_shift)
            new["a"].append(al)
            new["d"].append(dl)
            new["lam"].append(lam)
        return new

    @staticmethod
    def _leak(old, target, h_shift):
        """``old + round((target - old) / 2**h)``: between ``old`` and ``target``, so within
        their format without saturation."""
        return old + round_shift(target - old, h_shift)

    def relax(self, x, y, state, steps, h_shift=0):
        """Trajectory ``[state_0, ..., state_steps]``."""
        trajectory = [state]
        for _ in range(steps):
            trajectory.append(self.relax_step(x, y, trajectory[-1], h_shift))
        return trajectory

    # -- pipelined mini-batch (the train-mode wavefront) --------------------------------------
    def pipelined_gradients(self, X, Y):
        """Gradients summed over the batch as the pipeline computes them: sample ``k`` enters
        at step ``k``; all registers advance together each step; skew buffers hold ``a_{l-1}``
        (``2(L-l+1)`` steps), ``d_l`` (``2(L-l)`` steps) and ``y`` (``L+1`` steps) until the
        matching sensitivity arrives; ``B + 2L`` steps in all. Returns the gradient list."""
        L, B = self.cfg.L, len(X)
        # Each register is (value, sample tag); tag None is a bubble.
        bubble = (None, None)
        a = [bubble] * (L + 1)
        d = [bubble] * (L + 1)
        lam = [bubble] * (L + 1)
        a_skew = {l: deque([bubble] * (2 * (L - l + 1))) for l in range(1, L + 1)}
        d_skew = {l: deque([bubble] * (2 * (L - l))) for l in range(1, L + 1)}
        y_skew = deque([bubble] * (L + 1))
        grads = [np.zeros_like(w) for w in self.weights]

        def delayed(line, entry):
            line.append(entry)
            return line.popleft()

        for step in range(B + 2 * L):
            new_a0 = (np.asarray(X[step], np.int64), step) if step < B else bubble
            y_now = delayed(y_skew, (np.asarray(Y[step], np.int64), step) if step < B else bubble)
            new_a, new_d, new_lam = [new_a0], [bubble], [bubble] * (L + 1)
            for l in range(1, L + 1):
                if a[l - 1][1] is None:
                    new_a.append(bubble)
                    new_d.append(bubble)
                else:
                    al, dl = self.forward_layer(l, a[l - 1][0])
                    new_a.append((al, a[l - 1][1]))
                    new_d.append((dl, a[l - 1][1]))
            d_late = {l: delayed(d_skew[l], d[l]) for l in range(1, L + 1)}
            if a[L][1] is not None:
                assert d[L][1] == y_now[1] == a[L][1], "skew buffers out of step"
                new_lam[L] = (self.output_sensitivity(a[L][0], d[L][0], y_now[0]), a[L][1])
            for l in range(L - 1, 0, -1):
                if lam[l + 1][1] is not None:
                    assert d_late[l][1] == lam[l + 1][1], "skew buffers out of step"
                    new_lam[l] = (self.hidden_sensitivity(l, lam[l + 1][0], d_late[l][0]),
                                  lam[l + 1][1])
            for l in range(1, L + 1):
                a_late = delayed(a_skew[l], new_a[l - 1])
                if new_lam[l][1] is not None:
                    assert a_late[1] == new_lam[l][1], "skew buffers out of step"
                    grads[l - 1] += np.outer(new_lam[l][0], self.with_bias_input(a_late[0]))
            a, d, lam = new_a, new_d, new_lam
        return grads

    # -- training -----------------------------------------------------------------------------
    def seed(self, seed):
        """Seed every multiplier's xorshift32 generator (see :mod:`dyadic.hdl.lfsr`)."""
        self.lfsr = [np.array([seed_state(seed & MASK, l, j)
                               for j in range(len(self.cfg.generators(l)))], dtype=np.uint64)
                     for l in range(1, self.cfg.L + 1)]

    def update(self, grads):
        """``W <- sat(W - round(2**-lr_shift * G))`` for every layer, rounding as configured."""
        cfg = self.cfg
        s = cfg.update_shift  # 1..32, checked by NetConfig
        for l in range(1, cfg.L + 1):
            G = grads[l - 1]
            if cfg.rounding == "nearest":
                delta = round_shift(G, s)
            else:
                delta = (G + self._rounding_offsets(l, s)) >> s
            self.weights[l - 1], n = saturate(self.weights[l - 1] - delta, cfg.master_format)
            self._count("weight", n)

    def _rounding_offsets(self, l, s):
        """Low ``s`` bits of each generator's next states, laid out like the weights of ``l``."""
        cfg = self.cfg
        cols = cfg.row_length(l)
        offsets = np.zeros((cfg.sizes[l], cols), dtype=np.int64)
        rows = [g[2] for g in cfg.generators(l)]
        longest = max(len(r) for r in rows)
        table = np.array([r + [-1] * (longest - len(r)) for r in rows])  # -1: no row
        states = self.lfsr[l - 1]
        for k in range(longest * cols):
            row_now = table[:, k // cols]
            busy = row_now >= 0
            states = np.where(busy, xorshift32(states.copy()), states)
            offsets[row_now[busy], k % cols] = (states[busy] & ((1 << s) - 1)).astype(np.int64)
        self.lfsr[l - 1] = states
        return offsets

    def train_batch(self, X, Y):
        """One mini-batch of SGD (``X``: ``(B, n_0)``, ``Y``: ``(B, n_L)`` raw). Returns
        ``(loss_sum, correct)``: ``sum |a_L - y|^2`` raw with ``loss_frac`` bits, and the count
        of samples whose first largest output is the first largest target."""
        if not 1 <= len(X) <= self.cfg.max_batch:
            raise ValueError(f"batch of {len(X)} not allowed: 1..{self.cfg.max_batch}")
        result = self.gradient(X, Y)
        self.last_gradients = result["grads"]   # with the weights before the update
        a_L = result["a"][-1]
        err = a_L - Y
        loss_sum = int(np.sum(err * err))
        correct = int(np.count_nonzero(np.argmax(a_L, axis=1) == np.argmax(Y, axis=1)))
        self.update(result["grads"])
        return loss_sum, correct

    def train_epoch(self, X, Y, batch):
        """Consecutive mini-batches over the data in stored order (the last may be short).
        Returns ``(loss_sum, correct)`` summed over the epoch."""
        loss_sum = correct = 0
        for start in range(0, len(X), batch):
            l, c = self.train_batch(X[start:start + batch], Y[start:start + batch])
            loss_sum += l
            correct += c
        return loss_sum, correct

    def infer(self, X):
        """Forward only: ``a_L`` raw for ``X`` of shape ``(..., n_0)``."""
        a = np.asarray(X, dtype=np.int64)
        for l in range(1, self.cfg.L + 1):
            a, _ = self.forward_layer(l, a)
        return a
