"""Data sets: the bundled digits set and user ``.npz`` files, checked against the network.

The digits set is the UCI "optical recognition of handwritten digits" test set as bundled with
scikit-learn (1797 8x8 images, pixel counts 0..16, ten classes; E. Alpaydin and C. Kaynak,
CC BY 4.0); we ship its CSV (``data/digits.csv.gz``) so no download is needed.
"""

from dataclasses import dataclass
import gzip
from importlib import resources

import numpy as np

__all__ = ["Dataset", "DatasetError", "load", "load_digits"]


class DatasetError(ValueError):
    """A data set that cannot be used; the message says why and what would fix it."""


@dataclass
class Dataset:
    """``x``: ``(N, n_0)`` float inputs; ``labels``: ``(N,)`` int classes or None; ``y``:
    ``(N, n_L)`` float targets (one-hot of the labels for a classification set)."""

    name: str
    x: np.ndarray
    y: np.ndarray
    labels: np.ndarray = None

    def __len__(self):
        return len(self.x)

    def subset(self, index, name=None):
        return Dataset(name or self.name, self.x[index], self.y[index],
                       None if self.labels is None else self.labels[index])

    def split(self, test_fraction=0.2, seed=0):
        """Held-out split, the same for a given seed: ``(train, test)``."""
        order = np.random.default_rng(seed).permutation(len(self))
        n_test = int(round(len(self) * test_fraction))
        return (self.subset(order[n_test:], self.name + ":train"),
                self.subset(order[:n_test], self.name + ":test"))

    def check(self, cfg):
        """Raise :class:`DatasetError` unless the shapes fit ``cfg``."""
        n0, nL = cfg.sizes[0], cfg.sizes[-1]
        if self.x.shape[1] != n0:
            raise DatasetError(f"data set {self.name} has {self.x.shape[1]} inputs per sample "
                               f"but the network takes {n0}: use --net {self.x.shape[1]}-...")
        if self.y.shape[1] != nL:
            raise DatasetError(f"data set {self.name} has {self.y.shape[1]} targets per sample "
                               f"but the network has {nL} outputs: use --net ...-{self.y.shape[1]}")


def load_digits():
    """The bundled digits, pixels scaled to ``[0, 1]``, targets one-hot."""
    with resources.files(__package__).joinpath("data/digits.csv.gz").open("rb") as f:
        table = np.loadtxt(gzip.open(f), delimiter=",")
    labels = table[:, -1].astype(np.int64)
    return Dataset("digits", table[:, :-1] / 16.0, np.eye(10)[labels], labels)


def load(name):
    """``"digits"`` or a path to an ``.npz`` with ``x`` of shape ``(N, n_0)`` and ``y`` either
    integer labels ``(N,)`` or float targets ``(N, n_L)``."""
    if name == "digits":
        return load_digits()
    try:
        with np.load(name) as f:
            x, y = np.asarray(f["x"], dtype=float), np.asarray(f["y"])
    except FileNotFoundError:
        raise DatasetError(f"data set {name!r} not found: use 'digits' or a path to an .npz "
                           f"holding x (N, n_0) and y (N,) labels or (N, n_L) targets") from None
    except (KeyError, ValueError, OSError, EOFError) as e:
        raise DatasetError(f"cannot read data set {name!r} ({e}): it must be an .npz holding "
                           f"x (N, n_0) and y (N,) labels or (N, n_L) targets") from None
    if x.ndim != 2 or len(x) == 0 or y.ndim not in (1, 2) or len(y) != len(x):
        raise DatasetError(f"data set {name!r} has x of shape {x.shape} and y of shape "
                           f"{y.shape}: need x (N, n_0) and y (N,) or (N, n_L) with the same N>0")
    if y.ndim == 1:
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
            raise DatasetError(f"data set {name!r}: 1-D y must hold class labels 0..C-1")
        return Dataset(str(name), x, np.eye(int(y.max()) + 1)[y], y.astype(np.int64))
    return Dataset(str(name), x, y.astype(float), None)
