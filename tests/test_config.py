import pytest

from dyadic.hdl.config import NetConfig, ConfigError


def test_parse_and_round_trip():
    c = NetConfig.from_strings("64-16-10", "leaky_relu:4,identity", pes="8,2",
                               act_format="5.11")
    assert c.sizes == (64, 16, 10) and c.L == 2 and c.pes == (8, 2)
    assert str(c.activations[0]) == "leaky_relu:4" and c.act_format.frac_bits == 11
    assert NetConfig.from_dict(c.to_dict()) == c
    assert c.rows_of_pe(1, 3) == [3, 11]
    serial = NetConfig.from_strings("64-16-10", "leaky_relu,identity", engine="serial")
    assert serial.pes == (1, 1) and serial.multipliers == 2 and serial.pes_text == "serial"
    assert NetConfig.from_dict(serial.to_dict()) == serial != c


def test_macs_per_sample_counts_forward_backward_and_gradient():
    c = NetConfig.from_strings("4-3-2", "relu,identity")
    # forward + gradient: 2 * (3*5 + 2*4); backward through layer 2: 2*3
    assert c.macs_per_sample() == 2 * (3 * 5 + 2 * 4) + 2 * 3


@pytest.mark.parametrize("kwargs, message", [
    (dict(net="64"), "at least two sizes"),
    (dict(net="64-0-10"), "each must be"),
    (dict(net="4-3-2", act="relu"), "need 2 activation"),
    (dict(net="4-3-2", act="relu,tanh"), "allowed are relu, leaky_relu, hardtanh, identity"),
    (dict(net="4-3-2", act="leaky_relu:99,identity"), "K in 1..15"),
    (dict(net="4-3-2", act="relu,identity", pes="4,2"), "between 1 and the layer's size"),
    (dict(net="4-3-2", act="relu,identity", act_format="40.2"), "total width <= 32"),
    (dict(net="4-3-2", act="relu,identity", rounding="up"), "stochastic, nearest"),
    (dict(net="4-3-2", act="relu,identity", lr_shift=30), "0..24"),
    (dict(net="4-3-2", act="relu,identity", engine="serial", pes="2,1"),
     "one lane for every layer: give it --pes 1,1"),
    (dict(net="4-3-2", act="relu,identity", engine="serial", mults="1,2"),
     "one lane for every layer"),
    (dict(net="4-3-2", act="relu,identity", engine="pipelined"), "allowed are systolic, serial"),
])
def test_bad_configurations_say_what_is_allowed(kwargs, message):
    with pytest.raises(ConfigError, match=message) as info:
        NetConfig.from_strings(**kwargs)
    assert "\n" not in str(info.value)
