"""A pipelined multiplier: operands registered, then the product (two cycles).

On the ECP5 both registers are the MULT18X18D's own (input and output registers), not fabric
flip-flops beside it: in fabric, the multiplier was the one-lane ULX3S 64-64-10's slowest
path (97.2 MHz: 2.2 ns of wire to the block, 3.9 ns through it, 3.6 ns back). Elsewhere (the
iCE40, whose SB_MAC16 Yosys maps from the plain description, and simulation) it is described
in Amaranth.
"""

from amaranth import Signal, Instance, ClockSignal, Const, Cat, signed

__all__ = ["registered_product", "ECP5_WIDTH"]

#: Operand bits of an ECP5 MULT18X18D.
ECP5_WIDTH = 18


def registered_product(m, platform, a, b, name):
    """The product of ``a`` and ``b`` (signed Values of at most 18 bits on the ECP5) two
    cycles later, a ``signed(len(a) + len(b))`` Signal named ``name``."""
    width = len(a) + len(b)
    product = Signal(signed(width), name=name)
    if getattr(platform, "family", None) == "ecp5" and max(len(a), len(b)) <= ECP5_WIDTH:
        p = Signal(2 * ECP5_WIDTH, name=f"{name}_p")
        ports = {"i_CLK0": ClockSignal(), "i_CE0": Const(1), "i_RST0": Const(0),
                 "i_SIGNEDA": Const(1), "i_SIGNEDB": Const(1),
                 "i_SOURCEA": Const(0), "i_SOURCEB": Const(0)}
        for port, value in (("A", a), ("B", b)):
            extended = Cat(value, *([value[-1]] * (ECP5_WIDTH - len(value))))
            ports.update({f"i_{port}{k}": extended[k] for k in range(ECP5_WIDTH)})
        ports.update({f"o_P{k}": p[k] for k in range(2 * ECP5_WIDTH)})
        m.submodules[f"{name}_mult"] = Instance(
            "MULT18X18D", p_REG_INPUTA_CLK="CLK0", p_REG_INPUTB_CLK="CLK0",
            p_REG_PIPELINE_CLK="NONE", p_REG_OUTPUT_CLK="CLK0", p_GSR="DISABLED", **ports)
        m.d.comb += product.eq(p[:width].as_signed())
        return product
    a_reg = Signal(signed(len(a)), name=f"{name}_a")
    b_reg = Signal(signed(len(b)), name=f"{name}_b")
    m.d.sync += [a_reg.eq(a), b_reg.eq(b), product.eq(a_reg * b_reg)]
    return product
