"""Choose the default number formats by measurement: train 64-16-10 on digits with the
bit-exact device model under several formats, float32 beside it, and write the table.

    python -m dyadic.host.format_sweep [--out docs/formats.md] [--seeds 3]
"""

import argparse
import time

import numpy as np

from ..hdl.config import NetConfig
from .datasets import load_digits
from .device import open_device
from .training import run_training

#: (act, weight, master extra bits, sensitivity, rounding)
CANDIDATES = [
    ("4.12", "3.13", 8, "2.14", "stochastic"),
    ("4.12", "3.13", 8, "2.14", "nearest"),
    ("4.12", "3.13", 0, "2.14", "stochastic"),
    ("4.12", "3.13", 0, "2.14", "nearest"),
    ("4.8", "3.9", 8, "2.10", "stochastic"),
    ("3.5", "2.6", 8, "2.6", "stochastic"),
    ("3.5", "2.6", 0, "2.6", "nearest"),
]

#: activations -> (epochs, batch, lr_shift); ReLU units die at the leaky network's rate.
SETTINGS = {"relu,identity": (20, 16, 7), "leaky_relu,identity": (10, 16, 5)}


def sweep(act, epochs, batch, lr_shift, seeds):
    data = load_digits()
    rows = []
    for a, w, extra, s, rounding in CANDIDATES:
        cfg = NetConfig.from_strings("64-16-10", act, act_format=a, weight_format=w,
                                     master_extra_bits=extra, sens_format=s, rounding=rounding,
                                     lr_shift=lr_shift)
        dev, f32 = [], []
        for seed in seeds:
            r = run_training(open_device("golden", cfg, len(data) + 1), cfg, data, epochs, batch,
                             lr_shift, seed)
            dev.append(r["test_acc"])
            f32.append(r["float32_test_acc"])
        rows.append((cfg, float(np.mean(dev)), float(np.mean(f32))))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs/formats.md")
    p.add_argument("--seeds", type=int, default=3)
    args = p.parse_args(argv)
    seeds = list(range(1, args.seeds + 1))
    started = time.time()
    lines = [
        "# Number formats, chosen by measurement",
        "",
        f"64-16-10 MLP on the bundled digits set (1437 training / 360 held-out samples), "
        f"eta = 2^-K on the batch-summed gradient, zero biases and LeCun-uniform weights; "
        f"held-out accuracy averaged over "
        f"seeds {seeds}. 'device' is the bit-exact fixed-point model (what the hardware "
        f"computes); float32 trains the same network from the same start in the same order.",
        "",
        "Made by `python -m dyadic.host.format_sweep` (this run: {seconds} s).",
        "",
    ]
    for act, (epochs, batch, lr_shift) in SETTINGS.items():
        rows = sweep(act, epochs, batch, lr_shift, seeds)
        lines += [f"## activations {act}: {epochs} epochs, mini-batch {batch}, "
                  f"eta = 2^-{lr_shift}", "",
                  "| a, x, y | W (+ master bits) | lam | update rounding | device acc | "
                  "float32 acc | difference |",
                  "|---|---|---|---|---|---|---|"]
        for cfg, dev, f32 in rows:
            lines.append(
                f"| {cfg.act_format} = {cfg.act_format.ap_fixed} | {cfg.weight_format} + "
                f"{cfg.master_extra_bits} | {cfg.sens_format} | {cfg.rounding} | "
                f"{100 * dev:.1f}% | {100 * f32:.1f}% | {100 * (dev - f32):+.1f} pt |")
        lines.append("")
    d = NetConfig((64, 16, 10), ("relu", "identity"))
    lines += ["## Default", "",
              f"The default is the first row: activations {d.act_format} "
              f"({d.act_format.ap_fixed}), weights {d.weight_format} seen by the multipliers "
              f"with {d.master_extra_bits} extra master bits ({d.master_format} stored), "
              f"sensitivities {d.sens_format}, stochastic rounding of the update. Every "
              f"multiplier operand is 16 bits wide, which maps onto one iCE40 SB_MAC16 or one "
              f"ECP5 18x18 multiplier, so narrower operands would save no multipliers and lose "
              f"headroom for larger networks. What matters is the update: with 8-bit operands, "
              f"no master bits and round-to-nearest, updates below half an ulp vanish and "
              f"training collapses, while 8 master bits keep even 8-bit operands close to "
              f"float32. ReLU hidden units die at the learning rate that suits leaky ReLU "
              f"(in float32 as much as in fixed point), hence the smaller rate for the ReLU "
              f"network; `make train` uses leaky ReLU.", ""]
    text = "\n".join(lines).replace("{seconds}", f"{time.time() - started:.0f}")
    with open(args.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
