"""The host link's framed protocol: one definition for the gateware command engine, the
golden device and the driver.

Frame (both directions)::

    SYNC | op | len (u16 LE) | payload (len bytes) | crc (u16 LE)

``crc`` is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) over ``op``, ``len`` and the
payload. A reply's op is the request's op with bit 7 set, or :data:`ERROR` with payload
``[error code, request op]``. Requests:

=======  ========================================  =============================================
op       payload                                   reply payload
=======  ========================================  =============================================
INFO     -                                         UTF-8 JSON: config, samples, build, protocol
WRITE    addr u32, words u32...  (1..255 words)    -
READ     addr u32, count u16     (1..128 words)    count x i64
EXEC     command (:func:`pack_exec`, 14 bytes)     - (sent when the command has finished)
RESET    -                                         - (clears the status counters)
=======  ========================================  =============================================

Addresses are those of :mod:`.regmap`; WRITE and READ move consecutive indices and must stay
inside one register vector, one weight row or the data set. A frame that is malformed (bad
CRC, unknown op, impossible length, bad address or argument) is answered with an error and
changes nothing; a frame that stops arriving for :data:`TIMEOUT_BYTES` byte times is dropped
with a ``TIMEOUT`` error and the parser hunts for the next ``SYNC``.
"""

import enum
import struct

__all__ = ["SYNC", "Request", "Error", "ERROR", "MAX_PAYLOAD", "MAX_WRITE_WORDS",
           "MAX_READ_WORDS", "EXEC_BYTES", "TIMEOUT_BYTES", "crc16", "encode", "pack_exec",
           "unpack_exec", "FrameDecoder", "VERSION"]

VERSION = 1
SYNC = 0xA5
ERROR = 0x7F
MAX_PAYLOAD = 1024
MAX_WRITE_WORDS = 255
MAX_READ_WORDS = 128
EXEC_BYTES = 14
#: A stalled frame is dropped after this many byte times without a byte.
TIMEOUT_BYTES = 64


class Request(enum.IntEnum):
    INFO = 0x01
    WRITE = 0x02
    READ = 0x03
    EXEC = 0x04
    RESET = 0x05


class Error(enum.IntEnum):
    BAD_CRC = 1
    UNKNOWN_OP = 2
    BAD_LENGTH = 3
    TIMEOUT = 4
    BAD_ARGUMENT = 5


def crc16(data, crc=0xFFFF):
    """CRC-16/CCITT-FALSE."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def encode(op, payload=b""):
    """A complete frame."""
    body = bytes([op]) + struct.pack("<H", len(payload)) + bytes(payload)
    return bytes([SYNC]) + body + struct.pack("<H", crc16(body))


_EXEC = struct.Struct("<BHHHBBBI")


def pack_exec(op, count=0, sample=0, batch=0, h_shift=0, lr_shift=0, gradient=0, seed=0):
    """EXEC payload for a controller command (:class:`.regmap.Op`)."""
    return _EXEC.pack(int(op), count, sample, batch, h_shift, lr_shift, gradient, seed)


def unpack_exec(payload):
    op, count, sample, batch, h_shift, lr_shift, gradient, seed = _EXEC.unpack(payload)
    return dict(op=op, count=count, sample=sample, batch=batch, h_shift=h_shift,
                lr_shift=lr_shift, gradient=gradient, seed=seed)


class FrameDecoder:
    """Incremental parser of replies (host side): feed bytes, collect ``(op, payload)``;
    frames with a bad CRC are reported as ``(None, raw bytes)``."""

    def __init__(self):
        self.buffer = bytearray()

    def feed(self, data):
        self.buffer += data
        frames = []
        while True:
            start = self.buffer.find(bytes([SYNC]))
            if start < 0:
                self.buffer.clear()
                return frames
            del self.buffer[:start]
            if len(self.buffer) < 4:
                return frames
            length = self.buffer[2] | self.buffer[3] << 8
            if length > MAX_PAYLOAD:
                del self.buffer[:1]
                continue
            if len(self.buffer) < 6 + length:
                return frames
            frame = bytes(self.buffer[:6 + length])
            del self.buffer[:6 + length]
            body, crc = frame[1:4 + length], frame[4 + length] | frame[5 + length] << 8
            frames.append((frame[1], frame[4:4 + length]) if crc16(body) == crc
                          else (None, frame))
