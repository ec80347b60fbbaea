"""Figures for ``--plot``: written with matplotlib's non-interactive backend."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plot_relax", "plot_training", "plot_bench"]


def plot_relax(panels, path, floor=None):
    """Max abs error of every ``a_l`` and ``lam_l`` against the step, log axis, one panel per
    ``(errors, title)`` in ``panels`` side by side; exact zeros are drawn at ``floor``."""
    values = [v for errors, _ in panels for kind in ("a", "lam") for row in errors[kind]
              for v in row if v > 0]
    floor = floor or (min(values) / 100 if values else 1e-18)
    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 4.2), squeeze=False,
                             sharey=True)
    cmap = plt.get_cmap("viridis")
    for ax, (errors, title) in zip(axes[0], panels):
        L = len(errors["a"][0])
        for kind, style in (("a", "-o"), ("lam", "--s")):
            for l in range(L):
                ys = [max(row[l], floor) for row in errors[kind]]
                name = "a" if kind == "a" else "λ"
                ax.semilogy(range(len(ys)), ys, style, color=cmap(l / max(L - 1, 1)), ms=4,
                            label=f"{name}{l + 1}")
        ax.axhline(floor, color="grey", lw=0.8, ls=":")
        ax.text(0, floor * 1.5, "exact (0)", color="grey", fontsize=8)
        ax.axvline(2 * L, color="red", lw=0.8, ls=":")
        ax.text(2 * L, floor * 1.5, " 2L", color="red", fontsize=8)
        ax.set_xlabel("relaxation step")
        ax.set_title(title)
        ax.legend(ncol=2, fontsize=8)
    axes[0][0].set_ylabel("max |error| vs backprop")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_training(device_records, float_records, path, title):
    """Loss and training accuracy per epoch, device against float32."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    epochs = range(1, len(device_records) + 1)
    for records, name in ((device_records, "device"), (float_records, "float32")):
        left.plot(epochs, [r["loss"] for r in records], "-o", ms=3, label=name)
        right.plot(epochs, [r["train_acc"] for r in records], "-o", ms=3, label=name)
    left.set_xlabel("epoch")
    left.set_ylabel("training loss per sample")
    right.set_xlabel("epoch")
    right.set_ylabel("training accuracy")
    left.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_bench(result, path):
    """Batch-1 SGD step latency and pipelined throughput of each preset against NumPy."""
    names = [n for n, p in result["presets"].items() if p.get("samples_per_s")]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.8))
    for ax, key, numpy_key, label in (
            (left, "batch1_step_us", "batch1_step_us", "batch-1 SGD step (µs, lower is better)"),
            (right, "samples_per_s", "batch256_samples_per_s",
             "training throughput (samples/s)")):
        labels, values = [], []
        for n in names:
            p = result["presets"][n]
            labels += [f"{n}\n{p['net']}", f"NumPy\n{p['net']}"]
            values += [p[key], result["numpy"][p["net"]][numpy_key]]
        ax.bar(range(len(values)), values, color=["C0", "C1"] * len(names))
        ax.set_xticks(range(len(values)), labels, fontsize=8)
        ax.set_yscale("log")
        ax.set_title(label, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
