import numpy as np
import pytest

from dyadic.hdl.fixed import SQ, FormatError, round_shift, requantise, saturate, accumulator_bits


def test_format_ranges_and_ap_fixed_name():
    f = SQ(4, 12)
    assert f.width == 16 and f.ap_fixed == "ap_fixed<16,4>"
    assert f.to_float(f.raw_max) == 8 - 2 ** -12 and f.to_float(f.raw_min) == -8


def test_quantise_rounds_half_up_and_saturates():
    f = SQ(2, 2)  # step 0.25, range [-2, 1.75]
    got = f.to_float(f.quantise([0.125, -0.125, 0.3, 1.9, -5.0, 0.374]))
    np.testing.assert_array_equal(got, [0.25, 0.0, 0.25, 1.75, -2.0, 0.25])


def test_round_shift_matches_floor_of_value_plus_half(rng):
    v = rng.integers(-2**40, 2**40, size=10000)
    for s in (1, 3, 17):
        expected = np.floor(v / 2.0 ** s + 0.5).astype(np.int64)
        np.testing.assert_array_equal(round_shift(v, s), expected)
    np.testing.assert_array_equal(round_shift(v, -3), v * 8)


def test_requantise_counts_saturations():
    f = SQ(2, 4)
    raw, n = requantise(np.array([10 << 12, -(10 << 12), 1 << 12]), 12, f)
    np.testing.assert_array_equal(raw, [f.raw_max, f.raw_min, 16])
    assert n == 2
    assert saturate(np.array([0, 1]), f)[1] == 0


def test_accumulator_cannot_overflow():
    a, b = SQ(3, 5), SQ(2, 6)
    terms = 37
    worst = terms * a.raw_min * b.raw_min  # largest magnitude sum of products
    assert worst < 2 ** (accumulator_bits(a, b, terms) - 1)


@pytest.mark.parametrize("text", ["4.12", "4,12", "SQ(4,12)", "sq(4, 12)"])
def test_parse(text):
    assert SQ.parse(text) == SQ(4, 12)


@pytest.mark.parametrize("text", ["412", "a.b", "0.4", "20.20"])
def test_parse_rejects_with_a_message(text):
    with pytest.raises(FormatError, match="format"):
        SQ.parse(text)
