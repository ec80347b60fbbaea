"""The device driver's API, and the ``golden`` device: the bit-exact model behind it.

Every device (golden model, simulated RTL, real board) offers the same methods; callers hand
over and receive floats, and the device quantises to its formats exactly once on the way in.
"""

import dataclasses

import numpy as np

from .device_model import DeviceModel

__all__ = ["GoldenDevice", "open_device", "DeviceError"]


class DeviceError(RuntimeError):
    """The device cannot do what was asked; the message says why."""


class GoldenDevice:
    """The bit-exact NumPy model of the accelerator, answering like a device."""

    kind = "golden"

    def __init__(self, cfg):
        self.cfg = cfg
        self.model = DeviceModel(cfg)
        self.data = None

    def info(self):
        return {"device": self.kind, "config": self.cfg.to_dict()}

    def write_params(self, Ws, bs):
        self.model.set_params(Ws, bs)

    def read_params(self):
        return self.model.params()

    def read_raw_weights(self):
        """Master weights as raw integers (for bit-for-bit comparison)."""
        return [w.copy() for w in self.model.weights]

    def write_dataset(self, x, y):
        af = self.cfg.act_format
        self.data = (af.quantise(x), af.quantise(y))

    def train(self, epochs, batch, lr_shift, seed, on_epoch=None):
        """Pipelined mini-batch SGD over the stored data set. Returns a list per epoch of
        ``{"loss": mean loss per sample, "train_acc": fraction correct}`` from the device's
        counters; ``on_epoch(index, record)`` is called after each epoch."""
        if self.data is None:
            raise DeviceError("no data set on the device: write one before training")
        if not 1 <= batch <= self.cfg.max_batch:
            raise DeviceError(f"batch size {batch} not allowed: 1..{self.cfg.max_batch}")
        self.model.cfg = dataclasses.replace(self.cfg, lr_shift=lr_shift)
        self.model.seed(seed)
        X, Y = self.data
        records = []
        for epoch in range(epochs):
            loss_sum, correct = self.model.train_epoch(X, Y, batch)
            rec = {"loss": loss_sum / 2 / 2.0 ** self.cfg.loss_frac / len(X),
                   "train_acc": correct / len(X)}
            records.append(rec)
            if on_epoch:
                on_epoch(epoch, rec)
        self.model.cfg = self.cfg
        return records

    def infer(self, x):
        af = self.cfg.act_format
        return af.to_float(self.model.infer(af.quantise(x)))

    def gradient(self, x, y):
        """One sample: ``(dWs, dbs, a_L)`` as floats."""
        cfg, af = self.cfg, self.cfg.act_format
        r = self.model.gradient(af.quantise(x), af.quantise(y))
        scale = 2.0 ** -cfg.gradient_frac
        return ([g[:, :-1] * scale for g in r["grads"]], [g[:, -1] * scale for g in r["grads"]],
                af.to_float(r["a"][-1]))

    def relax(self, x_raw, y_raw, start, steps, h_shift=0):
        """Trace mode: load ``start`` into the registers, run ``steps`` relaxation steps with
        ``h = 2**-h_shift``; returns every register after every step (raw), ``start`` first."""
        return self.model.relax(x_raw, y_raw, start, steps, h_shift)

    def status(self):
        return {"saturations": dict(self.model.saturations)}


def open_device(name, cfg):
    """``golden`` for now; the simulated board and serial ports plug in here."""
    if name == "golden":
        return GoldenDevice(cfg)
    raise DeviceError(f"unknown device {name!r}: use golden")
