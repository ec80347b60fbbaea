"""The host link end to end: the driver against the golden board and the simulated RTL board
(Verilator behind a pseudo-terminal), protocol fuzzing, and the driver's refusals."""

import struct
import time

import numpy as np
import pytest

from dyadic.hdl.config import NetConfig
from dyadic.hdl.protocol import (SYNC, ERROR, MAX_PAYLOAD, Request, Error, encode, pack_exec,
                                 FrameDecoder)
from dyadic.hdl.regmap import Space, Op, address
from dyadic.host import float_model
from dyadic.host.device import open_device, DeviceError, BoardDevice
from dyadic.host.golden_board import GoldenBoard
from dyadic.host.link import Link, GoldenTransport

CFG = NetConfig.from_strings("6-5-3", "leaky_relu,identity", pes="2,3", lr_shift=3)
SAMPLES = 300


@pytest.fixture(scope="module")
def sim_board():
    device = open_device("sim", CFG, SAMPLES + 1)
    yield device
    device.close()


def _problem(seed):
    rng = np.random.default_rng(seed)
    Ws, bs = float_model.lecun_init(CFG.sizes, rng)
    X = rng.uniform(0, 1, (SAMPLES, CFG.sizes[0]))
    Y = np.eye(CFG.sizes[-1])[rng.integers(0, CFG.sizes[-1], SAMPLES)]
    return Ws, bs, X, Y


def test_sim_and_golden_train_bit_identically(sim_board):
    golden = open_device("golden", CFG, SAMPLES + 1)
    Ws, bs, X, Y = _problem(3)
    results = []
    for device in (sim_board, golden):
        device.write_params(Ws, bs)
        device.write_dataset(X[:250], Y[:250])
        records = device.train(epochs=2, batch=16, lr_shift=3, seed=11)
        evaluation = device.evaluate(X[250:], Y[250:])
        results.append((records, evaluation, device.read_raw_weights(), device.status()))
    (r_sim, e_sim, w_sim, s_sim), (r_gold, e_gold, w_gold, s_gold) = results
    assert r_sim == r_gold and e_sim == e_gold
    for a, b in zip(w_sim, w_gold):
        np.testing.assert_array_equal(a, b)
    assert {k: v for k, v in s_sim.items() if k != "cycles"} == \
        {k: v for k, v in s_gold.items() if k != "cycles"}
    assert s_sim["cycles"] > 0


def test_sim_gradient_and_relax_equal_golden(sim_board):
    golden = open_device("golden", CFG, SAMPLES + 1)
    Ws, bs, X, Y = _problem(4)
    af = CFG.act_format
    rng = np.random.default_rng(5)
    start = golden.link.transport.board.model.random_state(rng)
    out = []
    for device in (sim_board, golden):
        device.write_params(Ws, bs)
        grads = device.gradient(X[0], Y[0])
        trajectory = device.relax(af.quantise(X[1]), af.quantise(Y[1]), start, 5, h_shift=1)
        out.append((grads, trajectory, device.infer(X[:3])))
    for a, b in zip(out[0][0][0] + out[0][0][1], out[1][0][0] + out[1][0][1]):
        np.testing.assert_array_equal(a, b)
    for s_sim, s_gold in zip(out[0][1], out[1][1]):
        for kind in ("a", "d", "lam"):
            for a, b in zip(s_sim[kind], s_gold[kind]):
                np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(out[0][2], out[1][2])


def _bad_frames(rng, count):
    """Frames that must each get exactly one error reply and change nothing."""
    valid = [encode(Request.READ, struct.pack("<IH", address(Space.W, 1, 0), 3)),
             encode(Request.WRITE, struct.pack("<I2I", address(Space.W, 1, 0), 5, 6)),
             encode(Request.EXEC, pack_exec(Op.CLEAR)), encode(Request.INFO)]
    frames = []
    for k in range(count):
        kind = k % 6
        if kind == 0:    # unknown op, correct CRC
            op = int(rng.choice([o for o in range(256) if o not in set(Request)]))
            frames.append((encode(op, bytes(rng.integers(0, 256, rng.integers(0, 20),
                                                         dtype=np.uint8))), Error.UNKNOWN_OP))
        elif kind == 1:  # one bit flipped after the header: payload or CRC
            frame = bytearray(valid[k % len(valid)])
            bit = int(rng.integers(8 * 4, 8 * len(frame)))
            frame[bit // 8] ^= 1 << (bit % 8)
            frames.append((bytes(frame), Error.BAD_CRC))
        elif kind == 2:  # truncated after the header: it stalls and times out
            frame = valid[k % 3]
            frames.append((frame[:int(rng.integers(4, len(frame)))], Error.TIMEOUT))
        elif kind == 3:  # impossible length, header only
            length = int(rng.integers(MAX_PAYLOAD + 1, 65536))
            frames.append((bytes([SYNC, Request.WRITE]) + struct.pack("<H", length),
                           Error.BAD_LENGTH))
        elif kind == 4:  # wrong length for the request, correct CRC
            op = int(rng.choice([Request.READ, Request.EXEC, Request.INFO, Request.WRITE]))
            n = int(rng.choice([1, 2, 3, 5, 7, 9, 13, 15]))
            frames.append((encode(op, bytes(n)), Error.BAD_LENGTH))
        else:            # well formed, impossible argument
            bad = [encode(Request.WRITE, struct.pack("<II", address(Space.W, 9, 0), 1)),
                   encode(Request.WRITE, struct.pack("<II", address(Space.G, 1, 0), 1)),
                   encode(Request.WRITE, struct.pack("<II", address(Space.X, 0, 10 ** 5), 1)),
                   encode(Request.READ, struct.pack("<IH", address(Space.A, 1, 4), 9)),
                   encode(Request.EXEC, pack_exec(7)),
                   encode(Request.EXEC, pack_exec(Op.TRAIN, count=5, batch=999)),
                   encode(Request.EXEC, pack_exec(Op.TRAIN, count=10 ** 4, batch=4))]
            frames.append((bad[k % len(bad)], Error.BAD_ARGUMENT))
    return frames


def test_fuzzed_frames_get_errors_and_change_nothing(sim_board):
    link, device = sim_board.link, sim_board
    Ws, bs, X, Y = _problem(6)
    device.write_params(Ws, bs)
    before = device.read_raw_weights()
    transport = link.transport
    decoder = FrameDecoder()
    rng = np.random.default_rng(7)
    codes = []
    for frame, expected in _bad_frames(rng, 1002):
        transport.write(frame)
        replies, deadline = [], time.monotonic() + 10
        while not replies and time.monotonic() < deadline:
            replies = decoder.feed(transport.read(0.5))
        assert len(replies) == 1, f"{frame.hex()}: {replies} (expected {expected!r})"
        op, body = replies[0]
        assert op == ERROR and body[0] == expected and body[1] == frame[1], (frame.hex(), body)
        codes.append(body[0])
    assert set(codes) == set(Error)  # every kind of refusal was exercised
    after = device.read_raw_weights()
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    device.link.execute(op=Op.RELAX, count=1, sample=0)
    assert device.status()["steps"] >= 1


def test_golden_board_answers_the_same_errors():
    board = GoldenBoard(CFG, 16)
    transport = GoldenTransport(board)
    decoder = FrameDecoder()
    for frame, expected in _bad_frames(np.random.default_rng(8), 300):
        transport.write(frame)
        replies = decoder.feed(transport.read(0))
        assert len(replies) == 1 and replies[0][0] == ERROR and replies[0][1][0] == expected


def test_driver_refuses_a_device_built_for_another_network():
    board = GoldenBoard(CFG, 16)
    other = NetConfig.from_strings("6-9-3", "leaky_relu,identity")
    with pytest.raises(DeviceError, match="built for net 6-5-3"):
        BoardDevice(Link(GoldenTransport(board)), other, "golden")
    device = BoardDevice(Link(GoldenTransport(board)), CFG, "golden")
    with pytest.raises(DeviceError, match="does not fit the device's data memory"):
        device.write_dataset(np.zeros((40, 6)), np.zeros((40, 3)))
