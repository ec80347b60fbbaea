import zlib

import numpy as np
import pytest

from dyadic.hdl.config import NetConfig, Activation


def random_config(rng, L=None, acts=("relu", "leaky_relu", "hardtanh", "identity"), **kw):
    """A random small network: odd sizes, random activations, random (folded) PE counts."""
    L = L or int(rng.integers(1, 5))
    sizes = [int(n) for n in rng.integers(1, 9, size=L + 1)]
    names = [str(rng.choice(acts)) for _ in range(L)]
    activations = [Activation("leaky_relu", int(rng.integers(1, 5))) if n == "leaky_relu"
                   else Activation(n) for n in names]
    pes = [int(rng.integers(1, n + 1)) for n in sizes[1:]]
    mults = [int(rng.integers(1, 4)) for _ in pes]
    return NetConfig(tuple(sizes), tuple(activations), pes=tuple(pes), mults=tuple(mults), **kw)


@pytest.fixture
def rng(request):
    # A different, reproducible stream per test (str hashes change from process to process).
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
