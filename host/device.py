"""The device driver: one API for every device, spoken over the framed protocol.

``--device golden`` is the bit-exact model answering the protocol in-process, ``sim`` the RTL
simulated in Verilator behind a pseudo-terminal, anything else a serial port with a board on
it. Callers hand over and receive floats; the driver quantises once on the way in.

Data memory layout: the training set at samples ``0 .. N-1``, an evaluation set after it, and
the last sample slot as scratch for single-sample work (gradient, relax, infer).
"""

import numpy as np

from ..hdl.config import NetConfig
from ..hdl.regmap import Space, Status, Op, REGISTERS, address, col_bits

__all__ = ["BoardDevice", "open_device", "DeviceError"]


class DeviceError(RuntimeError):
    """The device cannot do what was asked; the message says why and what would help."""


class BoardDevice:
    """Device API over a :class:`~.link.Link`."""

    def __init__(self, link, cfg, kind, closer=None):
        self.link, self.cfg, self.kind, self._closer = link, cfg, kind, closer
        self.build = link.info()
        built = NetConfig.from_dict(self.build["config"])
        if built != cfg:
            raise DeviceError(
                f"the device was built for {built.describe()}, not {cfg.describe()}: build "
                f"and flash it for this network (dyadic build) or pass the device's settings")
        self.capacity = int(self.build["samples"])
        self.train_samples = 0

    def close(self):
        if self._closer:
            self._closer()
            self._closer = None

    def info(self):
        return {"device": self.kind, **self.build}

    # -- parameters --------------------------------------------------------------------------
    def write_params(self, Ws, bs):
        mf = self.cfg.master_format
        self.write_raw_weights([mf.quantise(np.column_stack([W, b])) for W, b in zip(Ws, bs)])

    def write_raw_weights(self, weights):
        cb = col_bits(self.cfg)
        for l, w in enumerate(weights, 1):
            for r, row in enumerate(w):
                self.link.write(address(Space.W, l, r << cb), list(row))

    def read_raw_weights(self):
        return self._read_rows(Space.W)

    def read_params(self):
        mf = self.cfg.master_format
        raw = self.read_raw_weights()
        return [mf.to_float(w[:, :-1]) for w in raw], [mf.to_float(w[:, -1]) for w in raw]

    def _read_rows(self, space):
        cb, cfg = col_bits(self.cfg), self.cfg
        return [np.array([self.link.read(address(space, l, r << cb), cfg.row_length(l))
                          for r in range(cfg.sizes[l])], dtype=np.int64)
                for l in range(1, cfg.L + 1)]

    # -- data --------------------------------------------------------------------------------
    def _write_samples(self, first, x, y):
        af, n0, nL = self.cfg.act_format, self.cfg.sizes[0], self.cfg.sizes[-1]
        x, y = np.atleast_2d(x), np.atleast_2d(y)
        if first + len(x) > self.capacity:
            raise DeviceError(f"{first + len(x)} samples do not fit the device's data memory "
                              f"of {self.capacity}: use fewer samples or a larger build")
        self.link.write(address(Space.X, 0, first * n0), list(af.quantise(x).ravel()))
        self.link.write(address(Space.Y, 0, first * nL), list(af.quantise(y).ravel()))

    def write_dataset(self, x, y):
        if len(x) > self.capacity - 1:
            raise DeviceError(f"a data set of {len(x)} samples does not fit the device's data "
                              f"memory ({self.capacity - 1} plus one scratch slot)")
        self._write_samples(0, x, y)
        self.train_samples = len(x)

    def status(self):
        values = self.link.read(address(Space.STATUS, 0, 0), len(Status))
        return {s.name.lower(): v for s, v in zip(Status, values)}

    # -- training and inference ----------------------------------------------------------------
    def train(self, epochs, batch, lr_shift, seed, on_epoch=None):
        """Epochs of pipelined mini-batch SGD over the stored training set; per epoch the
        device's counters as ``{"loss": mean loss per sample, "train_acc": fraction}``."""
        if not self.train_samples:
            raise DeviceError("no data set on the device: write one before training")
        if not 1 <= batch <= self.cfg.max_batch:
            raise DeviceError(f"batch size {batch} not allowed: 1..{self.cfg.max_batch}")
        import dataclasses
        dataclasses.replace(self.cfg, lr_shift=lr_shift)  # raises ConfigError if impossible
        self.link.execute(op=Op.SEED, seed=seed & 0xFFFFFFFF)
        n = self.train_samples
        records = []
        for epoch in range(epochs):
            self.link.reset()
            self.link.execute(op=Op.TRAIN, sample=0, count=n, batch=batch, lr_shift=lr_shift)
            st = self.status()
            rec = {"loss": self._mean_loss(st, n),
                   "train_acc": st["correct"] / n,
                   "saturations": {k: st["sat_" + k] for k in ("activation", "sensitivity",
                                                               "weight")}}
            records.append(rec)
            if on_epoch:
                on_epoch(epoch, rec)
        return records

    def evaluate(self, x, y, batch=64):
        """On-chip inference over a labelled set: ``(mean loss, accuracy)``. The set goes
        after the training set, in as many pieces as the memory left there needs."""
        x, y = np.atleast_2d(x), np.atleast_2d(y)
        first = self.train_samples
        room = self.capacity - first
        loss = correct = 0
        for start in range(0, len(x), room):
            piece = slice(start, start + room)
            self._write_samples(first, x[piece], y[piece])
            self.link.reset()
            self.link.execute(op=Op.INFER, sample=first, count=len(x[piece]), batch=batch)
            st = self.status()
            loss, correct = loss + st["loss"], correct + st["correct"]
        return self._mean_loss({"loss": loss}, len(x)), correct / len(x)

    def _mean_loss(self, status, samples):
        """The loss counter (``sum |a_L - y|^2``, raw) as the mean of ``|a_L - y|^2 / 2``."""
        return status["loss"] / 2 / 2.0 ** self.cfg.loss_frac / samples

    # -- single samples in the scratch slot ----------------------------------------------------
    def _scratch(self, x, y):
        slot = self.capacity - 1
        self._write_samples(slot, x, y)
        return slot

    def infer(self, x):
        """Outputs ``a_L`` (floats) for each row of ``x``, by L relaxation steps each."""
        af = self.cfg.act_format
        outputs = []
        for row in np.atleast_2d(x):
            slot = self._scratch(row, np.zeros(self.cfg.sizes[-1]))
            self.link.execute(op=Op.RELAX, count=self.cfg.L, sample=slot)
            outputs.append(self.link.read(address(Space.A, self.cfg.L, 0), self.cfg.sizes[-1]))
        return af.to_float(np.array(outputs))

    def gradient(self, x, y):
        """One sample, 2L + 1 relaxation steps: ``(dWs, dbs, a_L)`` as floats."""
        cfg = self.cfg
        slot = self._scratch(x, y)
        self.link.execute(op=Op.RELAX, count=2 * cfg.L + 1, sample=slot, gradient=1)
        scale = 2.0 ** -cfg.gradient_frac
        grads = self._read_rows(Space.G)
        a_L = self.link.read(address(Space.A, cfg.L, 0), cfg.sizes[-1])
        return ([g[:, :-1] * scale for g in grads], [g[:, -1] * scale for g in grads],
                cfg.act_format.to_float(np.array(a_L)))

    def relax(self, x_raw, y_raw, start, steps, h_shift=0):
        """Trace mode: load ``start`` into the registers and the raw sample into the scratch
        slot, step ``steps`` times; every register after every step (raw), ``start`` first."""
        cfg, af = self.cfg, self.cfg.act_format
        slot = self._scratch(af.to_float(x_raw), af.to_float(y_raw))
        for kind, space in REGISTERS.items():
            for l, values in enumerate(start[kind], 1):
                self.link.write(address(space, l, 0), list(values))
        trajectory = [start]
        for _ in range(steps):
            self.link.execute(op=Op.RELAX, count=1, sample=slot, h_shift=h_shift)
            trajectory.append({kind: [np.array(self.link.read(address(space, l, 0),
                                                               cfg.sizes[l]))
                                      for l in range(1, cfg.L + 1)]
                               for kind, space in REGISTERS.items()})
        return trajectory


def open_device(name, cfg, samples=2048):
    """``golden``, ``sim`` or a serial port. ``samples``: data-set room a built-on-demand
    device (golden, sim) gets."""
    from .link import Link, GoldenTransport, SerialTransport
    if name == "golden":
        from .golden_board import GoldenBoard
        return BoardDevice(Link(GoldenTransport(GoldenBoard(cfg, samples))), cfg, "golden")
    if name == "sim":
        from .sim_launcher import launch_sim_board
        transport, stop = launch_sim_board(cfg, samples)
        try:
            return BoardDevice(Link(transport, timeout=60), cfg, "sim", closer=stop)
        except Exception:
            stop()
            raise
    if name.startswith("/") or name.upper().startswith("COM"):
        return BoardDevice(Link(SerialTransport(name)), cfg, name)
    raise DeviceError(f"unknown device {name!r}: use golden, sim or a serial port such as "
                      f"/dev/ttyUSB1")
