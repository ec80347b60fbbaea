"""Activation unit: ``z`` (exact dot product) -> ``a = sat(round(f(z)))`` and ``d = f'(z)``
as a 2-bit code, bit for bit as :meth:`dyadic.host.device_model.DeviceModel.forward_layer`."""

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .arith import round_shift, saturate

__all__ = ["ActivationUnit", "D_ZERO", "D_ONE", "D_SLOPE"]

D_ZERO, D_ONE, D_SLOPE = 0, 1, 2


class ActivationUnit(wiring.Component):
    """One cycle of latency: ``a``, ``d`` and ``saturated`` belong to the previous cycle's ``z``.

    Parameters
    ----------
    act : Activation
    z_width, z_frac : int
        The dot product's width and fraction bits.
    fmt : SQ
        Output (activation) format.

    Attributes
    ----------
    z : In(signed(z_width))
    a : Out(signed(fmt.width))
    d : Out(2)
        Derivative code: 0 zero, 1 one, 2 slope ``2**-k``.
    saturated : Out(1)
    """

    def __init__(self, act, z_width, z_frac, fmt):
        self.act, self.z_frac, self.fmt = act, z_frac, fmt
        super().__init__({"z": In(signed(z_width)), "a": Out(signed(fmt.width)),
                          "d": Out(unsigned(2)), "saturated": Out(1)})

    def elaborate(self, platform):
        m = Module()
        act, z, F, fmt = self.act, self.z, self.z_frac, self.fmt
        to_act = lambda v, extra=0: round_shift(v, F + extra - fmt.frac_bits)
        positive = z > 0
        if act.name == "relu":
            rounded = Mux(positive, to_act(z), 0)
            d = Mux(positive, D_ONE, D_ZERO)
        elif act.name == "leaky_relu":
            rounded = Mux(positive, to_act(z), to_act(z, act.shift))
            d = Mux(positive, D_ONE, D_SLOPE)
        elif act.name == "hardtanh":
            one = 1 << F
            inside = (z > -one) & (z < one)
            rounded = to_act(Mux(z >= one, one, Mux(z <= -one, -one, z)))
            d = Mux(inside, D_ONE, D_ZERO)
        else:
            rounded = to_act(z)
            d = D_ONE
        # registered between the rounding and the saturation (two carry chains)
        rounded_r = Signal(rounded.shape())
        d_r = Signal(2)
        m.d.sync += [rounded_r.eq(rounded), d_r.eq(d)]
        a, sat = saturate(rounded_r, fmt)
        m.d.comb += [self.a.eq(a), self.d.eq(d_r), self.saturated.eq(sat)]
        return m
