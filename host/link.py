"""Byte transports and the protocol client (request, reply, timeouts, retries).

A transport moves bytes: ``write(data)``, ``read(timeout) -> bytes`` (what arrived within
``timeout`` seconds, possibly nothing; ``b""`` at once if the other end is gone: raise),
``close()``. The same :class:`Link` drives all of them, so the simulated board and a real one
are reached by the same code.
"""

import struct
import time

from ..hdl.protocol import (ERROR, Request, Error, encode, FrameDecoder, pack_exec,
                            MAX_WRITE_WORDS, MAX_READ_WORDS)
from .device import DeviceError

__all__ = ["Link", "SerialTransport", "GoldenTransport", "LinkClosed"]

_ERRORS = {Error.BAD_CRC: "the frame arrived corrupted (CRC mismatch)",
           Error.UNKNOWN_OP: "the device does not know this request",
           Error.BAD_LENGTH: "the frame's length is impossible for its request",
           Error.TIMEOUT: "the frame stopped arriving mid-way",
           Error.BAD_ARGUMENT: "an address or argument is outside what the device's build "
                               "holds"}


class LinkClosed(DeviceError):
    """The other end went away."""


class SerialTransport:
    """A serial port (a board's USB bridge, or the simulated board's pseudo-terminal)."""

    def __init__(self, port, baud=115200):
        import serial
        try:
            self.port = serial.Serial(port, baud, timeout=0)
        except (serial.SerialException, OSError) as e:
            raise DeviceError(f"cannot open serial port {port}: {_reason(e)} (is the board "
                              f"plugged in? use --device sim for the simulated board)") from None

    def write(self, data):
        self.port.write(data)
        self.port.flush()

    def read(self, timeout):
        import serial
        self.port.timeout = timeout
        try:
            first = self.port.read(1)
            return first + self.port.read(self.port.in_waiting) if first else b""
        except (serial.SerialException, OSError) as e:
            raise LinkClosed(f"the device's serial link failed: {_reason(e)}") from None

    def close(self):
        self.port.close()


def _reason(e):
    return str(e).split(":", 1)[-1].strip() or type(e).__name__


class GoldenTransport:
    """The bit-exact model answering in-process (:class:`~.golden_board.GoldenBoard`)."""

    def __init__(self, board):
        self.board = board
        self.replies = bytearray()

    def write(self, data):
        self.replies += self.board.receive(bytes(data))

    def read(self, timeout):
        if not self.replies:
            self.replies += self.board.timeout()
        data = bytes(self.replies)
        self.replies.clear()
        return data

    def close(self):
        pass


class Link:
    """Requests and their replies over a transport.

    ``timeout`` bounds the wait for a reply (seconds); idempotent requests (INFO, READ,
    WRITE) are re-sent up to ``retries`` times when no reply comes or it arrives corrupted.
    EXEC waits as long as the command runs (``exec_timeout``, None for ever).
    """

    def __init__(self, transport, timeout=5.0, retries=2, exec_timeout=None):
        self.transport, self.timeout, self.retries = transport, timeout, retries
        self.exec_timeout = exec_timeout
        self.decoder = FrameDecoder()

    def request(self, op, payload=b"", timeout=False, retries=None):
        """``timeout``: seconds, None for no limit, False for the link's default."""
        retries = self.retries if retries is None else retries
        timeout = self.timeout if timeout is False else timeout
        for attempt in range(retries + 1):
            self.transport.write(encode(op, payload))
            reply = self._reply(timeout)
            if reply is None:
                continue
            code, body = reply
            if code == (op | 0x80):
                return body
            if code == ERROR and len(body) == 2 and body[1] == op:
                if body[0] in (Error.BAD_CRC, Error.TIMEOUT) and attempt < retries:
                    continue
                raise DeviceError(f"device refused {Request(op).name}: "
                                  f"{_ERRORS.get(body[0], f'error {body[0]}')}")
        raise DeviceError(f"no answer from the device to {Request(op).name} after "
                          f"{retries + 1} attempt(s) ({timeout} s each): check the port, the "
                          f"cable and that the board is configured")

    def _reply(self, timeout):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = 0.5 if deadline is None else max(0.0, deadline - time.monotonic())
            data = self.transport.read(min(wait, 0.5))
            for code, body in self.decoder.feed(data):
                if code is not None:
                    return code, body
            if deadline is not None and time.monotonic() >= deadline:
                return None

    # -- requests ----------------------------------------------------------------------------
    def info(self):
        import json
        return json.loads(self.request(Request.INFO).decode())

    def write(self, address, words):
        for start in range(0, len(words), MAX_WRITE_WORDS):
            chunk = words[start:start + MAX_WRITE_WORDS]
            self.request(Request.WRITE, struct.pack(f"<I{len(chunk)}I", address + start,
                                                    *[int(w) & 0xFFFFFFFF for w in chunk]))

    def read(self, address, count):
        values = []
        for start in range(0, count, MAX_READ_WORDS):
            n = min(MAX_READ_WORDS, count - start)
            body = self.request(Request.READ, struct.pack("<IH", address + start, n))
            values += struct.unpack(f"<{n}q", body)
        return values

    def execute(self, **command):
        self.request(Request.EXEC, pack_exec(**command), timeout=self.exec_timeout, retries=0)

    def reset(self):
        self.request(Request.RESET)
