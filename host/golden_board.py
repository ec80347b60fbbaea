"""The ``golden`` device: the bit-exact model behind the same framed protocol as the gateware
command engine (:mod:`dyadic.hdl.protocol`), answering byte for byte as the hardware does."""

import struct

import numpy as np

from ..hdl.protocol import (SYNC, ERROR, MAX_PAYLOAD, MAX_WRITE_WORDS, MAX_READ_WORDS,
                            EXEC_BYTES, Request, Error, crc16, encode, unpack_exec)
from ..hdl.regmap import Space, Status, Op, REGISTERS, col_bits
from ..hdl.top import build_info
from .device_model import DeviceModel, SATURATION_COUNTERS

__all__ = ["GoldenBoard"]


class GoldenBoard:
    """Registers, memories and counters of the device, driven by request frames."""

    def __init__(self, cfg, samples):
        self.cfg, self.samples = cfg, samples
        self.model = DeviceModel(cfg)
        self.state = {k: [np.zeros(n, np.int64) for n in cfg.sizes[1:]] for k in REGISTERS}
        self.grads = [np.zeros_like(w) for w in self.model.weights]
        self.x = np.zeros(samples * cfg.sizes[0], np.int64)
        self.y = np.zeros(samples * cfg.sizes[-1], np.int64)
        self.status = {s: 0 for s in Status}
        self.info = build_info(cfg, samples, board="golden")
        self.pending = bytearray()

    # -- framing, as the receiver FSM of hdl/command.py ------------------------------------
    def receive(self, data):
        """Feed request bytes; returns the reply bytes they produce."""
        self.pending += data
        out = bytearray()
        while True:
            start = self.pending.find(bytes([SYNC]))
            if start < 0:
                self.pending.clear()
                return bytes(out)
            del self.pending[:start]
            if len(self.pending) < 4:
                return bytes(out)
            op, length = self.pending[1], self.pending[2] | self.pending[3] << 8
            if length > MAX_PAYLOAD:
                del self.pending[:4]
                out += encode(ERROR, bytes([Error.BAD_LENGTH, op]))
                continue
            if len(self.pending) < 6 + length:
                return bytes(out)
            frame = bytes(self.pending[:6 + length])
            del self.pending[:6 + length]
            if crc16(frame[1:4 + length]) != frame[4 + length] | frame[5 + length] << 8:
                out += encode(ERROR, bytes([Error.BAD_CRC, op]))
                continue
            out += self.execute(op, frame[4:4 + length])

    def timeout(self):
        """A partial frame was abandoned (the transport saw no byte for too long)."""
        if self.pending.startswith(bytes([SYNC])) and len(self.pending) >= 2:
            op = self.pending[1]
            self.pending.clear()
            return encode(ERROR, bytes([Error.TIMEOUT, op]))
        self.pending.clear()
        return b""

    # -- requests ----------------------------------------------------------------------------
    def execute(self, op, payload):
        error = self._check(op, payload)
        if error:
            return encode(ERROR, bytes([error, op]))
        reply = op | 0x80
        if op == Request.INFO:
            return encode(reply, self.info)
        if op == Request.WRITE:
            (address,) = struct.unpack_from("<I", payload)
            words = struct.unpack_from(f"<{(len(payload) - 4) // 4}I", payload, 4)
            for k, w in enumerate(words):
                self._write(address + k, w)
            return encode(reply)
        if op == Request.READ:
            address, count = struct.unpack("<IH", payload)
            return encode(reply, b"".join(struct.pack("<q", self._read(address + k))
                                          for k in range(count)))
        self._command(unpack_exec(payload) if op == Request.EXEC else dict(op=Op.CLEAR))
        return encode(reply)

    def _check(self, op, payload):
        n = len(payload)
        if op in (Request.INFO, Request.RESET):
            return Error.BAD_LENGTH if n else 0
        if op == Request.WRITE:
            if n < 8 or n % 4 or (n - 4) // 4 > MAX_WRITE_WORDS:
                return Error.BAD_LENGTH
            (address,) = struct.unpack_from("<I", payload)
            ok, writable = self._range(address, (n - 4) // 4)
            return 0 if ok and writable else Error.BAD_ARGUMENT
        if op == Request.READ:
            if n != 6:
                return Error.BAD_LENGTH
            address, count = struct.unpack("<IH", payload)
            ok, _ = self._range(address, count)
            return 0 if ok and 1 <= count <= MAX_READ_WORDS else Error.BAD_ARGUMENT
        if op == Request.EXEC:
            if n != EXEC_BYTES:
                return Error.BAD_LENGTH
            return 0 if self._exec_ok(unpack_exec(payload)) else Error.BAD_ARGUMENT
        return Error.UNKNOWN_OP

    def _split(self, address):
        return (address >> 24) & 15, (address >> 20) & 15, address & 0xFFFFF

    def _range(self, address, count):
        cfg = self.cfg
        space, layer, index = self._split(address)
        layer_ok = 1 <= layer <= cfg.L
        end = index + count
        cb = col_bits(cfg)
        if space in (Space.A, Space.D, Space.LAM):
            return layer_ok and end <= cfg.sizes[layer], True
        if space in (Space.W, Space.G):
            ok = layer_ok and (index >> cb) < cfg.sizes[layer] and \
                (index & ((1 << cb) - 1)) + count <= cfg.row_length(layer)
            return ok, space == Space.W
        if space == Space.X:
            return end <= len(self.x), True
        if space == Space.Y:
            return end <= len(self.y), True
        if space == Space.STATUS:
            return end <= len(Status), False
        return False, False

    def _exec_ok(self, c):
        cfg = self.cfg
        shift = cfg.gradient_frac - cfg.master_format.frac_bits + c["lr_shift"]
        lr_ok = c["lr_shift"] < 32 and 1 <= shift <= 32
        samples_ok = c["count"] >= 1 and c["sample"] + c["count"] <= self.samples and \
            c["batch"] >= 1
        return {Op.RELAX: c["sample"] < self.samples and c["h_shift"] <= 15
                and c["gradient"] <= 1,
                Op.TRAIN: samples_ok and c["batch"] <= cfg.max_batch and lr_ok,
                Op.INFER: samples_ok, Op.UPDATE: lr_ok, Op.SEED: True,
                Op.CLEAR: True}.get(c["op"], False)

    # -- the access bus ------------------------------------------------------------------------
    def _write(self, address, word):
        cfg = self.cfg
        space, layer, index = self._split(address)
        signed32 = word - (1 << 32) if word >> 31 else word
        if space in (Space.A, Space.D, Space.LAM):
            fmt = {Space.A: cfg.act_format, Space.LAM: cfg.sens_format}.get(space)
            value = word & 3 if fmt is None else _wrap(signed32, fmt.width)
            self.state[_KIND[space]][layer - 1][index] = value
        elif space == Space.W:
            cb = col_bits(cfg)
            self.model.weights[layer - 1][index >> cb, index & ((1 << cb) - 1)] = \
                _wrap(signed32, cfg.master_format.width)
        else:
            memory = self.x if space == Space.X else self.y
            memory[index] = _wrap(signed32, cfg.act_format.width)

    def _read(self, address):
        space, layer, index = self._split(address)
        cb = col_bits(self.cfg)
        if space in (Space.A, Space.D, Space.LAM):
            return int(self.state[_KIND[space]][layer - 1][index])
        if space in (Space.W, Space.G):
            matrix = (self.model.weights if space == Space.W else self.grads)[layer - 1]
            return int(matrix[index >> cb, index & ((1 << cb) - 1)])
        if space == Space.X:
            return int(self.x[index])
        if space == Space.Y:
            return int(self.y[index])
        return int(self.status[Status(index)])

    # -- controller commands -----------------------------------------------------------------
    def _samples(self, first, count):
        n0, nL = self.cfg.sizes[0], self.cfg.sizes[-1]
        return (self.x[first * n0:(first + count) * n0].reshape(count, n0),
                self.y[first * nL:(first + count) * nL].reshape(count, nL))

    def _command(self, c):
        cfg, model, st = self.cfg, self.model, self.status
        before = dict(model.saturations)
        if c["op"] == Op.CLEAR:
            self.status = {s: 0 for s in Status}
            return
        if c["op"] == Op.SEED:
            model.seed(c["seed"])
        elif c["op"] == Op.RELAX:
            x, y = (v[0] for v in self._samples(c["sample"], 1))
            for step in range(1, c["count"] + 1):
                if c["gradient"] and step == c["count"]:
                    self.grads = model.state_gradients(x, self.state)
                self.state = model.relax_step(x, y, self.state, c["h_shift"])
            st[Status.STEPS] += c["count"]
        elif c["op"] == Op.UPDATE:
            self._with_lr(c["lr_shift"], lambda: model.update(self.grads))
            st[Status.UPDATES] += 1
        elif c["op"] in (Op.TRAIN, Op.INFER):
            X, Y = self._samples(c["sample"], c["count"])
            if c["op"] == Op.TRAIN:
                loss, correct = self._with_lr(c["lr_shift"],
                                              lambda: model.train_epoch(X, Y, c["batch"]))
                self.grads = [g.copy() for g in model.last_gradients]
                batches = range(0, c["count"], c["batch"])
                st[Status.UPDATES] += len(batches)
                st[Status.STEPS] += sum(min(c["batch"], c["count"] - s) + 2 * cfg.L
                                        for s in batches)
            else:
                out = model.infer(X)
                loss = int(np.sum((out - Y) ** 2))
                correct = int(np.sum(np.argmax(out, 1) == np.argmax(Y, 1)))
                st[Status.STEPS] += sum(min(c["batch"], c["count"] - s) + cfg.L + 1
                                        for s in range(0, c["count"], c["batch"]))
            st[Status.LOSS] += loss
            st[Status.CORRECT] += correct
            st[Status.SAMPLES] += c["count"]
        for kind, s in SATURATION_COUNTERS.items():
            st[s] += model.saturations[kind] - before[kind]

    def _with_lr(self, lr_shift, action):
        import dataclasses
        self.model.cfg = dataclasses.replace(self.cfg, lr_shift=lr_shift)
        try:
            return action()
        finally:
            self.model.cfg = self.cfg


_KIND = {space: kind for kind, space in REGISTERS.items()}


def _wrap(value, width):
    """The low ``width`` bits of ``value`` as a signed number (what a register keeps)."""
    value &= (1 << width) - 1
    return value - (1 << width) if value >> (width - 1) else value
