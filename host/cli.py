"""``dyadic``: the command line. Each command is a thin shell over the host API."""

import argparse
import json
import math
import os
import subprocess
import sys

import numpy as np

from ..hdl.config import NetConfig, ConfigError, ROUNDING_MODES, ENGINES
from .datasets import DatasetError, load as load_dataset
from .device import DeviceError, open_device
from . import float_model, relaxation
from .board_commands import add_board_commands, BOARD_ERRORS

__all__ = ["main"]


class UsageError(ValueError):
    """A bad argument the user can fix; printed as one line."""


# -- shared options -------------------------------------------------------------------------------
def add_config_options(p, net_default="64-16-10", act_default=None):
    g = p.add_argument_group("network and number formats")
    g.add_argument("--net", default=net_default, help="layer sizes, inputs first (e.g. 64-16-10)")
    g.add_argument("--act", default=act_default,
                   help="activation per layer: relu, leaky_relu[:K], hardtanh, identity "
                        "(default relu hidden, identity output)")
    g.add_argument("--act-format", help="activation/input format INT.FRAC (default 4.12)")
    g.add_argument("--weight-format", help="weight format INT.FRAC (default 3.13)")
    g.add_argument("--sens-format", help="sensitivity format INT.FRAC (default 2.14)")
    g.add_argument("--master-bits", type=int, help="extra master-weight fraction bits")
    g.add_argument("--rounding", choices=ROUNDING_MODES, help="weight-update rounding")
    g.add_argument("--pes", help="processing elements per layer, e.g. 8,2")
    g.add_argument("--mults", help="multiplier lanes per processing element, per layer "
                                   "(default 1; a lane has two multipliers)")
    g.add_argument("--engine", choices=ENGINES,
                   help="gateware organisation: PEs per layer (systolic, the default) or one "
                        "lane every layer takes in turn (serial, for the smallest FPGAs)")


def config_from(args, net=None, lr_shift=None):
    return NetConfig.from_strings(
        net or args.net, args.act, pes=args.pes, mults=args.mults, engine=args.engine,
        act_format=args.act_format,
        weight_format=args.weight_format, sens_format=args.sens_format,
        master_extra_bits=args.master_bits, rounding=args.rounding, lr_shift=lr_shift)


def emit(args, result, human):
    if args.json:
        print(json.dumps(result))
    else:
        human()


def read_npz(path, what, names=()):
    """All arrays of an .npz as float arrays; ``names`` must be present."""
    try:
        with np.load(path) as f:
            arrays = {k: np.asarray(f[k], dtype=float) for k in f.files}
    except FileNotFoundError:
        raise UsageError(f"{what} {path} not found") from None
    except (ValueError, OSError, EOFError) as e:
        raise UsageError(f"cannot read {what} {path} as .npz: {e or 'empty file'}") from None
    missing = [n for n in names if n not in arrays]
    if missing:
        raise UsageError(f"{what} {path} lacks {', '.join(missing)}")
    return arrays


def load_params(path):
    """``(Ws, bs)`` from an .npz of W1, b1, W2, b2, ... (W_l of shape n_l x n_(l-1))."""
    arrays = read_npz(path, "parameter file")
    L = sum(1 for k in arrays if k[:1] == "W" and k[1:].isdigit())
    if L == 0:
        raise UsageError(f"parameter file {path} holds no W1, b1, ... arrays")
    read_npz(path, "parameter file", [f"{k}{l}" for l in range(1, L + 1) for k in "Wb"])
    Ws = [np.atleast_2d(arrays[f"W{l}"]) for l in range(1, L + 1)]
    bs = [np.atleast_1d(arrays[f"b{l}"]) for l in range(1, L + 1)]
    for l in range(1, L + 1):
        if (l > 1 and Ws[l - 1].shape[1] != Ws[l - 2].shape[0]) or \
                bs[l - 1].shape != (Ws[l - 1].shape[0],):
            raise UsageError(f"parameter file {path}: W{l} {Ws[l - 1].shape} and b{l} "
                             f"{bs[l - 1].shape} do not chain (W_l must be n_l x n_(l-1))")
    return Ws, bs


def load_sample(path):
    s = read_npz(path, "sample file", ["x", "y"])
    return s["x"].ravel(), s["y"].ravel()


def sizes_of(Ws):
    return [Ws[0].shape[1]] + [W.shape[0] for W in Ws]


# -- relax ------------------------------------------------------------------------------------------
def cmd_relax(args):
    rng = np.random.default_rng(args.seed)
    if args.params:
        Ws, bs = load_params(args.params)
        net = "-".join(map(str, sizes_of(Ws)))
    else:
        net = args.net
    cfg = config_from(args, net)
    L = cfg.L
    if not args.params:
        Ws, bs = float_model.lecun_init(cfg.sizes, rng)
        bs = [rng.normal(scale=0.1, size=b.shape) for b in bs]
    if args.sample:
        x, y = load_sample(args.sample)
    else:
        x, y = rng.uniform(0, 1, cfg.sizes[0]), rng.uniform(0, 1, cfg.sizes[-1])
    if x.shape != (cfg.sizes[0],) or y.shape != (cfg.sizes[-1],):
        raise UsageError(f"sample x {x.shape} / y {y.shape} does not fit network {net}")
    steps = args.steps if args.steps is not None else (2 * L + 2 if args.h == 1 else 12 * L)
    if steps < 0:
        raise UsageError("--steps must be >= 0")
    def run(h, steps):
        init = np.random.default_rng([args.seed, 1]) if args.init == "random" else None
        if args.device == "float":
            if not 0 < h:
                raise UsageError(f"--h {h} not allowed: h > 0 (h = 1 is the exact regime)")
            return relaxation.run_float(Ws, bs, cfg.activations, x, y, steps, h, init)
        k = -math.log2(h) if h > 0 else -1
        if h > 1 or k != int(k):
            raise UsageError(f"--h {h} not allowed on the device: h = 2^-k, k >= 0 "
                             f"(1, 0.5, 0.25, ...)")
        with opened(args.device, cfg) as device:
            device.write_params(Ws, bs)
            return relaxation.run_device(device, cfg, Ws, bs, x, y, steps, int(k), init)

    errors = run(args.h, steps)
    exact = {kind: relaxation.exact_from(errors[kind]) for kind in ("a", "lam")}
    result = {"L": L, "exact_from": exact, "errors": errors}
    if args.plot:
        from .plots import plot_relax
        title = lambda h: f"{args.device}, net {net}, h = {h:g}"
        panels = [(errors, title(args.h))]
        if args.plot_h is not None:
            panels.append((run(args.plot_h, 12 * L), title(args.plot_h)))
        plot_relax(panels, args.plot)

    def human():
        head = ["step"] + [f"a{l}" for l in range(1, L + 1)] + [f"lam{l}" for l in range(1, L + 1)]
        print(f"{args.device} relaxation, net {net} ({cfg.describe() if args.device != 'float' else 'float64'}), h = {args.h:g}, "
              f"{args.init} start; max |error| against backprop in the same arithmetic")
        print("  ".join(f"{h:>9}" for h in head))
        for s in range(steps + 1):
            row = errors["a"][s] + errors["lam"][s]
            print("  ".join([f"{s:>9}"] + [f"{v:9.2e}" if v else f"{'0':>9}" for v in row]))
        fmt = lambda v: "never" if v is None else str(v)
        for kind in ("a", "lam"):
            got = ", ".join(f"{kind}{l} {fmt(v)}" for l, v in enumerate(exact[kind], 1))
            print(f"exact from step: {got}")
        print(f"(theory for h = 1: a_l from step l, lam_l from step 2L+1-l = "
              f"{', '.join(str(2 * L + 1 - l) for l in range(1, L + 1))})")
    emit(args, result, human)


# -- gradient ---------------------------------------------------------------------------------------
def cmd_gradient(args):
    Ws, bs = load_params(args.params)
    x, y = load_sample(args.sample)
    net = "-".join(map(str, sizes_of(Ws)))
    cfg = config_from(args, net)
    if x.shape != (cfg.sizes[0],) or y.shape != (cfg.sizes[-1],):
        raise UsageError(f"sample x {x.shape} / y {y.shape} does not fit network {net} from "
                         f"{args.params}")
    if args.device == "float":
        dWs, dbs, out, _ = float_model.backprop(Ws, bs, cfg.activations, x, y)
    else:
        with opened(args.device, cfg) as device:
            device.write_params(Ws, bs)
            dWs, dbs, out = device.gradient(x, y)
    result = {"output": np.asarray(out).tolist(), "dW": [d.tolist() for d in dWs],
              "db": [d.tolist() for d in dbs]}

    def human():
        with np.printoptions(precision=6, suppress=True, linewidth=110):
            print(f"output a_L = {np.asarray(out)}")
            for l, (dW, db) in enumerate(zip(dWs, dbs), 1):
                print(f"dW{l} =\n{dW}\ndb{l} = {db}")
    emit(args, result, human)


# -- train ------------------------------------------------------------------------------------------
def cmd_train(args):
    from .training import run_training
    cfg = config_from(args, lr_shift=args.lr_shift)
    dataset = load_dataset(args.dataset)
    dataset.check(cfg)
    from .training import samples_needed
    quiet = args.json or not sys.stderr.isatty()
    from tqdm import tqdm
    bar = tqdm(total=args.epochs, desc=f"training on {args.device}", unit="epoch",
               disable=quiet, file=sys.stderr)

    def progress(epoch, rec):
        bar.update(1)
        bar.set_postfix(loss=f"{rec['loss']:.4f}", acc=f"{rec['train_acc']:.3f}")

    with opened(args.device, cfg, samples_needed(dataset)) as device:
        result = run_training(device, cfg, dataset, args.epochs, args.batch, args.lr_shift,
                              args.seed, progress)
    bar.close()
    Ws, bs = result.pop("params")
    if args.save:
        np.savez(args.save, **{f"{k}{l}": v for l, (W, b) in enumerate(zip(Ws, bs), 1)
                               for k, v in (("W", W), ("b", b))})
    f_records = result.pop("float32_epochs")
    if args.plot:
        from .plots import plot_training
        plot_training(result["epochs"], f_records, args.plot,
                      f"{args.dataset}, net {args.net}, {args.device} vs float32")
    result["float32_epochs"] = f_records

    def human():
        print(f"device {args.device}: {cfg.describe()}")
        print(f"data set {args.dataset}: {result['train_samples']} training samples, "
              f"batch {args.batch}, eta 2^-{args.lr_shift}, seed {args.seed}")
        print(f"{'epoch':>5}  {'device loss':>11}  {'device acc':>10}  {'float32 loss':>12}  "
              f"{'float32 acc':>11}")
        for e, (d, f) in enumerate(zip(result["epochs"], f_records), 1):
            print(f"{e:>5}  {d['loss']:11.5f}  {d['train_acc']:10.4f}  {f['loss']:12.5f}  "
                  f"{f['train_acc']:11.4f}")
        print(f"held-out test accuracy: device {result['test_acc']:.4f}, "
              f"float32 {result['float32_test_acc']:.4f}  ({result['seconds']:.1f} s on device)")
        if args.save:
            print(f"weights saved to {args.save}")
    emit(args, result, human)


# -- infer ------------------------------------------------------------------------------------------
def cmd_infer(args):
    Ws, bs = load_params(args.params)
    net = "-".join(map(str, sizes_of(Ws)))
    cfg = config_from(args, net)
    x = read_npz(args.sample, "sample file", ["x"])["x"]
    x = np.atleast_2d(x)
    if x.shape[1] != cfg.sizes[0]:
        raise UsageError(f"sample x of shape {x.shape} does not fit network {net}: need "
                         f"{cfg.sizes[0]} inputs per row")
    if args.device == "float":
        a, _ = float_model.forward(Ws, bs, cfg.activations, x)
        out = a[-1]
    else:
        with opened(args.device, cfg) as device:
            device.write_params(Ws, bs)
            out = device.infer(x)
    result = {"output": np.asarray(out).tolist(), "class": np.argmax(out, 1).tolist()}

    def human():
        with np.printoptions(precision=5, suppress=True, linewidth=110):
            for row, c in zip(np.asarray(out), result["class"]):
                print(f"{row}  -> class {c}")
    emit(args, result, human)


class opened:
    """``with opened(name, cfg) as device``: open a device and always close it."""

    def __init__(self, name, cfg, samples=16):
        self.name, self.cfg, self.samples = name, cfg, samples

    def __enter__(self):
        self.device = open_device(self.name, self.cfg, self.samples)
        return self.device

    def __exit__(self, *exc):
        self.device.close()


def cmd_bench(args):
    """The bench simulates RTL, which the host never imports: it runs as its own process."""
    argv = [sys.executable, "-m", "dyadic.sim.bench", "--out", args.out]
    for board in args.board or ():
        argv += ["--board", board]
    argv += ["--json"] if args.json else []
    argv += ["--plot", args.plot] if args.plot else []
    argv += ["--no-build"] if args.no_build else []
    code = subprocess.call(argv, env=dict(os.environ, OPENBLAS_NUM_THREADS="1",
                                          OMP_NUM_THREADS="1", MKL_NUM_THREADS="1"))
    if code != 0:
        raise UsageError(f"the bench failed (exit {code})")


# -- entry point ------------------------------------------------------------------------------------
DEVICE_HELP = ("golden (bit-exact model), sim (the RTL in Verilator, built on first use) or "
               "a board's serial port")


def build_parser():
    parser = argparse.ArgumentParser(prog="dyadic", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("relax", help="run the relaxation from arbitrary registers and watch it "
                                     "become exact")
    p.add_argument("--device", default="golden", help=DEVICE_HELP + ", or float")
    p.add_argument("--init", choices=("random", "zero"), default="random",
                   help="initial register contents")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, help="steps to run (default 2L+2, or 12L for h < 1)")
    p.add_argument("--h", type=float, default=1.0, help="step size (device: 2^-k)")
    p.add_argument("--plot-h", type=float, metavar="H",
                   help="with --plot: also run with step size H and draw it beside")
    p.add_argument("--params", help=".npz with W1, b1, ... (default: random LeCun init)")
    p.add_argument("--sample", help=".npz with x and y (default: random)")
    add_config_options(p, net_default="4-3-2")
    p.set_defaults(func=cmd_relax)

    p = sub.add_parser("gradient", help="gradients of one sample")
    p.add_argument("--device", default="golden", help=DEVICE_HELP + ", or float")
    p.add_argument("--params", required=True, help=".npz with W1, b1, W2, b2, ...")
    p.add_argument("--sample", required=True, help=".npz with x and y")
    add_config_options(p)
    p.set_defaults(func=cmd_gradient)

    p = sub.add_parser("infer", help="outputs of a network for some inputs")
    p.add_argument("--device", default="golden", help=DEVICE_HELP + ", or float")
    p.add_argument("--params", required=True, help=".npz with W1, b1, W2, b2, ...")
    p.add_argument("--sample", required=True, help=".npz with x (one row per input)")
    add_config_options(p)
    p.set_defaults(func=cmd_infer)

    p = sub.add_parser("train", help="train on the device, float32 beside it")
    p.add_argument("--device", default="golden", help=DEVICE_HELP)
    p.add_argument("--dataset", default="digits", help="digits or an .npz with x, y")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr-shift", type=int, default=NetConfig.lr_shift,
                   help="learning rate 2^-K on the batch-summed gradient")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--save", help="write the trained weights to this .npz")
    add_config_options(p, act_default="leaky_relu,identity")
    p.set_defaults(func=cmd_train)

    add_board_commands(sub, add_config_options, config_from)

    p = sub.add_parser("bench", help="performance table of the board presets against NumPy "
                                     "(RTL simulation, build reports, NumPy on one core)")
    p.add_argument("--board", action="append", help="presets to measure (default: all)")
    p.add_argument("--out", default="build/bench", help="writes bench.json and bench.md here")
    p.add_argument("--no-build", action="store_true",
                   help="use the build reports there are; build no missing preset")
    p.set_defaults(func=cmd_bench)

    for p in sub.choices.values():
        p.add_argument("--json", action="store_true", help="print one JSON object")
        if p.prog.split()[-1] in ("relax", "train", "bench"):
            p.add_argument("--plot", metavar="FILE.png", help="write a figure")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (UsageError, ConfigError, DatasetError, DeviceError, *BOARD_ERRORS) as e:
        print(f"dyadic {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dyadic {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
