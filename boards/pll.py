"""Phase-locked loops: the board oscillator to the design clock.

``ice40_pll`` and ``ecp5_pll`` search the divider settings the way ``icepll`` and ``ecppll``
do and return the frequency actually reached (MHz) with the parameters of the primitive.
"""

from dataclasses import dataclass

__all__ = ["PLLSetting", "ice40_pll", "ecp5_pll", "PLLError"]


class PLLError(ValueError):
    """No divider setting reaches the requested clock."""


@dataclass(frozen=True)
class PLLSetting:
    primitive: str
    fin_mhz: float
    fout_mhz: float
    params: dict


def ice40_pll(fin_mhz, fout_mhz):
    """SB_PLL40_PAD in SIMPLE feedback: ``fout = fin (DIVF+1) / ((DIVR+1) 2**DIVQ)`` with the
    phase detector at 10-133 MHz, the VCO at 533-1066 MHz, the output at 16-275 MHz; within 2%
    of ``fout_mhz``."""
    best = None
    for divr in range(16):
        fpfd = fin_mhz / (divr + 1)
        if not 10 <= fpfd <= 133:
            continue
        for divf in range(128):
            fvco = fpfd * (divf + 1)
            if not 533 <= fvco <= 1066:
                continue
            for divq in range(1, 7):
                f = fvco / 2 ** divq
                if not 16 <= f <= 275:   # the output's range
                    continue
                if best is None or abs(f - fout_mhz) < abs(best[0] - fout_mhz):
                    best = (f, divr, divf, divq, fpfd)
    if best is None or abs(best[0] - fout_mhz) > 0.02 * fout_mhz:
        raise PLLError(f"the iCE40 PLL cannot make {fout_mhz:g} MHz from {fin_mhz:g} MHz"
                       + (f": the nearest is {best[0]:.4g} MHz" if best else ""))
    f, divr, divf, divq, fpfd = best
    filter_range = next(i for i, edge in enumerate((17, 26, 44, 66, 101, 1e9), 1)
                        if fpfd < edge)
    return PLLSetting("SB_PLL40_PAD", fin_mhz, f, {
        "FEEDBACK_PATH": "SIMPLE", "DIVR": divr, "DIVF": divf, "DIVQ": divq,
        "FILTER_RANGE": filter_range})


def ecp5_pll(fin_mhz, fout_mhz):
    """EHXPLLL with CLKOP feedback: ``fout = fin CLKFB_DIV / CLKI_DIV``, phase detector at
    3.125-400 MHz, VCO ``fout CLKOP_DIV`` at 400-800 MHz, output up to 400 MHz; within 2% of
    ``fout_mhz``."""
    best = None
    for clki in range(1, 129):
        fpfd = fin_mhz / clki
        if not 3.125 <= fpfd <= 400:
            continue
        for clkfb in range(1, 81):
            f = fpfd * clkfb
            if f > 400:   # the output's limit
                break
            for clkop in range(1, 129):
                if 400 <= f * clkop <= 800:
                    break
            else:
                continue
            if best is None or abs(f - fout_mhz) < abs(best[0] - fout_mhz):
                best = (f, clki, clkfb, clkop)
    if best is None or abs(best[0] - fout_mhz) > 0.02 * fout_mhz:
        raise PLLError(f"the ECP5 PLL cannot make {fout_mhz:g} MHz from {fin_mhz:g} MHz"
                       + (f": the nearest is {best[0]:.4g} MHz" if best else ""))
    f, clki, clkfb, clkop = best
    return PLLSetting("EHXPLLL", fin_mhz, f, {
        "CLKI_DIV": clki, "CLKFB_DIV": clkfb, "CLKOP_DIV": clkop,
        "CLKOP_CPHASE": max(0, clkop // 2 - 1)})
