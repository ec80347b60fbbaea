"""``dyadic bench``: the performance table of every board preset, measured in one run.

Per preset: cycles from the RTL in Verilator (relaxation step, pipelined training at
mini-batch 32, one batch-1 SGD step = 2L+1 relaxation steps + update), the ideal cycles
(multiply-accumulates per sample / multipliers) and the utilisation; post-route Fmax and
utilisation from the board's build report (built when missing); projected samples/s and
batch-1 latency = cycles / Fmax; digits held-out accuracy of the device (the bit-exact model,
equal to the RTL bit for bit) against float32. NumPy float32 on one core of this machine, the
same networks, batch 1 and 256, and simulator speed on Verilator and Icarus.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

# NumPy is measured on one core: its BLAS must not start threads
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from dyadic.boards import BOARDS, BoardError  # noqa: E402
from dyadic.boards.build import BuildReport, build  # noqa: E402
from dyadic.boards.resources import check_fits  # noqa: E402
from dyadic.hdl.config import NetConfig  # noqa: E402
from dyadic.host import float_model  # noqa: E402
from dyadic.host.datasets import load as load_dataset  # noqa: E402
from dyadic.host.device import open_device  # noqa: E402
from dyadic.host.training import run_training  # noqa: E402
from dyadic.sim.measure import measure_cycles  # noqa: E402

__all__ = ["run_bench", "numpy_step", "numpy_sgd", "markdown"]


def numpy_step(Ws, bs, acts, x, y, eta):
    """One float32 SGD step in place: forward, backward, ``W -= eta * dW`` (summed over the
    batch, as the device does)."""
    a, zs = [x], []
    for W, b, act in zip(Ws, bs, acts):
        z = a[-1] @ W.T + b
        zs.append(z)
        a.append(float_model.activate(act, z).astype(np.float32, copy=False))
    lam = float_model.derivative(acts[-1], zs[-1]).astype(np.float32) * (a[-1] - y)
    for l in range(len(Ws) - 1, -1, -1):
        dW, db = lam.T @ a[l], lam.sum(axis=0)
        if l:
            lam = float_model.derivative(acts[l - 1], zs[l - 1]).astype(np.float32) * (lam @ Ws[l])
        Ws[l] -= eta * dW
        bs[l] -= eta * db


def numpy_sgd(cfg, batch, seconds=1.0, seed=0):
    """Float32 SGD steps of ``cfg``'s network at ``batch`` on this core for about ``seconds``:
    ``(step_us, samples_per_s)``."""
    rng = np.random.default_rng(seed)
    Ws, bs = float_model.lecun_init(cfg.sizes, rng)
    Ws = [W.astype(np.float32) for W in Ws]
    bs = [b.astype(np.float32) for b in bs]
    x = rng.uniform(0, 1, (batch, cfg.sizes[0])).astype(np.float32)
    y = np.eye(cfg.sizes[-1], dtype=np.float32)[rng.integers(0, cfg.sizes[-1], batch)]
    # the same batch again and again: a learning rate per sample keeps the numbers finite
    # (the arithmetic, and so the time, does not depend on it)
    eta = np.float32(2.0 ** -cfg.lr_shift / batch)
    numpy_step(Ws, bs, cfg.activations, x, y, eta)
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        numpy_step(Ws, bs, cfg.activations, x, y, eta)
        n += 1
    elapsed = (time.perf_counter() - started) / n
    return elapsed * 1e6, batch / elapsed


def board_report(board, cfg, samples, build_root, log, rebuild=True):
    """The preset's build report: read, or built now (``rebuild``). ``None`` with the reason
    when there is none."""
    path = Path(build_root) / board.name / "report.json"
    if path.exists():
        report = BuildReport.load(path)
        if report.net == cfg.net_text and report.pes == cfg.pes_text:
            return report, None
    if not rebuild:
        try:
            check_fits(board, cfg, samples)
        except BoardError as e:
            return None, str(e)
        return None, f"no build report in {path.parent} (make boards)"
    log(f"building the {board.name} preset (this takes a while) ...")
    try:
        return build(board, cfg, samples, board.clock_mhz, path.parent), None
    except BoardError as e:
        return None, str(e)


def digits_accuracy(cfg, epochs=10, batch=16, seed=1):
    dataset = load_dataset("digits")
    if dataset.x.shape[1] != cfg.sizes[0] or dataset.y.shape[1] != cfg.sizes[-1]:
        return None, None
    device = open_device("golden", cfg, len(dataset) + 1)
    try:
        r = run_training(device, cfg, dataset, epochs, batch, cfg.lr_shift, seed)
    finally:
        device.close()
    return r["test_acc"], r["float32_test_acc"]


def run_bench(boards, build_root="build", log=print, icarus_net="16-8-4", rebuild=True):
    result = {"presets": {}, "numpy": {}, "sim_cycles_per_s": {}, "failed": {}}
    for name in boards:
        board = BOARDS[name]
        cfg = board.config()
        log(f"{name}: cycles of net {cfg.net_text} (PEs {cfg.pes_text}) in Verilator ...")
        cycles = measure_cycles(cfg, "verilator", batch=32)
        result["sim_cycles_per_s"].setdefault("verilator", round(cycles["sim_cycles_per_s"]))
        report, why = board_report(board, cfg, board.preset["samples"], build_root, log,
                                   rebuild)
        log(f"{name}: digits, device and float32 ...")
        acc, acc32 = digits_accuracy(cfg)
        entry = {
            "net": cfg.net_text, "pes": cfg.pes_text, "multipliers": cfg.multipliers,
            "cycles_per_step": cycles["cycles_per_step"],
            "cycles_per_sample": round(cycles["cycles_per_sample"], 1),
            "ideal_cycles_per_sample": round(cycles["ideal_cycles_per_sample"], 1),
            "utilisation": round(cycles["utilisation"], 3),
            "batch1_step_cycles": cycles["batch1_step_cycles"],
            "test_acc": acc, "float32_test_acc": acc32,
        }
        if report is not None:
            # rates at the clock the bitstream runs at (its target; Fmax only bounds it)
            f = min(report.target_mhz, report.fmax_mhz)
            entry.update({
                "fmax_mhz": report.fmax_mhz, "target_mhz": report.target_mhz,
                "timing_met": report.timing_met, "resources": report.resources,
                "samples_per_s": round(f * 1e6 / cycles["cycles_per_sample"]),
                "batch1_step_us": round(cycles["batch1_step_cycles"] / f, 2)})
        else:
            entry.update({"fmax_mhz": None, "samples_per_s": None, "batch1_step_us": None,
                          "build": why})
        result["presets"][name] = entry
        log(f"{name}: NumPy float32, one core ...")
        step1, _ = numpy_sgd(cfg, 1)
        _, rate256 = numpy_sgd(cfg, 256)
        result["numpy"][cfg.net_text] = {"batch1_step_us": round(step1, 2),
                                         "batch256_samples_per_s": round(rate256)}
        if entry["batch1_step_us"]:
            entry["batch1_speedup_vs_numpy"] = round(step1 / entry["batch1_step_us"], 1)
            entry["throughput_vs_numpy_batch256"] = round(entry["samples_per_s"] / rate256, 1)
    log(f"Icarus speed on net {icarus_net} ...")
    small = NetConfig.from_strings(icarus_net, "leaky_relu,identity")
    result["sim_cycles_per_s"]["icarus"] = round(
        measure_cycles(small, "icarus", batch=8)["sim_cycles_per_s"])
    if "verilator" not in result["sim_cycles_per_s"]:
        result["sim_cycles_per_s"]["verilator"] = round(
            measure_cycles(small, "verilator", batch=8)["sim_cycles_per_s"])
    return result


def markdown(result):
    """The README's performance table."""
    fmt = lambda v, spec="": "—" if v is None else format(v, spec)
    rows = ["| preset | net (PEs) | mult. | clock (Fmax) MHz | cycles/sample | ideal | utilisation "
            "| samples/s | batch-1 step | NumPy batch-1 | NumPy batch-256 samples/s "
            "| digits device / float32 |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, p in result["presets"].items():
        n = result["numpy"][p["net"]]
        fmax = "—" if p["fmax_mhz"] is None else (
            f"{p['target_mhz']:g} ({p['fmax_mhz']:.1f})"
            + ("" if p.get("timing_met", True) else " missed"))
        step = "—" if p["batch1_step_us"] is None else (
            f"{p['batch1_step_cycles']} cyc = {p['batch1_step_us']:.1f} µs")
        acc = ("—" if p["test_acc"] is None else
               f"{100 * p['test_acc']:.1f}% / {100 * p['float32_test_acc']:.1f}%")
        rows.append(f"| {name} | {p['net']} ({p['pes']}) | {p['multipliers']} | {fmax} "
                    f"| {p['cycles_per_sample']} | {p['ideal_cycles_per_sample']} "
                    f"| {100 * p['utilisation']:.1f}% | {fmt(p['samples_per_s'], ',')} | {step} "
                    f"| {n['batch1_step_us']:.1f} µs | {n['batch256_samples_per_s']:,} | {acc} |")
    s = result["sim_cycles_per_s"]
    rows.append("")
    rows.append(f"Simulation speed: Verilator {s['verilator']:,} cycles/s, "
                f"Icarus {s['icarus']:,} cycles/s.")
    for name, p in result["presets"].items():
        if p.get("build"):
            rows.append(f"{name}: no bitstream: {p['build']}")
    return "\n".join(rows)


def main(argv=None):
    p = argparse.ArgumentParser(prog="dyadic bench", description=__doc__.split("\n")[0])
    p.add_argument("--board", action="append", choices=sorted(BOARDS),
                   help="presets to measure (default: all)")
    p.add_argument("--build-root", default="build", help="where board builds live")
    p.add_argument("--out", default="build/bench", help="writes bench.json and bench.md here")
    p.add_argument("--json", action="store_true")
    p.add_argument("--plot", metavar="FILE.png", help="device against NumPy, as a figure")
    p.add_argument("--no-build", action="store_true",
                   help="use the build reports there are; build no missing preset")
    args = p.parse_args(argv)
    log = (lambda msg: print(msg, file=sys.stderr, flush=True))
    result = run_bench(args.board or sorted(BOARDS), args.build_root, log,
                       rebuild=not args.no_build)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(result, indent=2))
    (out / "bench.md").write_text(markdown(result) + "\n")
    if args.plot:
        from dyadic.host.plots import plot_bench
        plot_bench(result, args.plot)
    print(json.dumps(result) if args.json else markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
