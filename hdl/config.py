"""The one network configuration: what the gateware generator, the golden model, the driver and
the board builder all read.

A network is ``a_0 = x``, ``z_l = W_l a_{l-1} + b_l``, ``a_l = f_l(z_l)`` for ``l = 1..L`` with
``sizes = (n_0, ..., n_L)``. The bias is stored as the last column of a weight row (it multiplies
a constant input of 1.0), so a row of layer ``l`` holds ``n_{l-1} + 1`` weights.
"""

from dataclasses import dataclass, asdict

from .fixed import SQ, FormatError, accumulator_bits

__all__ = ["Activation", "NetConfig", "ConfigError", "ACTIVATIONS", "ROUNDING_MODES", "ENGINES"]

ACTIVATIONS = ("relu", "leaky_relu", "hardtanh", "identity")
ROUNDING_MODES = ("stochastic", "nearest")
#: Organisations of the gateware: a chain of processing elements per layer, or one lane
#: every layer takes in turn (:mod:`dyadic.hdl.serial`, for the smallest FPGAs).
ENGINES = ("systolic", "serial")
LOSSES = ("mse",)
#: Largest layer width accepted (a row must fit a PE's local memory and the golden model's int64).
MAX_WIDTH = 4096


class ConfigError(ValueError):
    """An impossible configuration; the message says what is wrong and what is allowed."""


@dataclass(frozen=True)
class Activation:
    """An activation ``f`` and its derivative ``f'`` (both piecewise linear).

    ``leaky_relu`` has slope ``2**-shift`` for ``z <= 0``. Derivatives are taken as
    ``relu'(0) = 0``, ``leaky_relu'(0) = 2**-shift``, ``hardtanh'(+-1) = 0``.
    """

    name: str
    shift: int = 0

    def __post_init__(self):
        if self.name not in ACTIVATIONS:
            raise ConfigError(f"unknown activation {self.name!r}: allowed are "
                              f"{', '.join(ACTIVATIONS)} (leaky_relu:K for slope 2^-K)")
        if self.name == "leaky_relu" and not 1 <= self.shift <= 15:
            raise ConfigError(f"leaky_relu slope 2^-{self.shift} is not allowed: K in 1..15")
        if self.name != "leaky_relu" and self.shift:
            raise ConfigError(f"activation {self.name} takes no slope")

    @classmethod
    def parse(cls, text):
        name, _, k = text.strip().partition(":")
        if name == "leaky_relu":
            if k and not k.isdigit():
                raise ConfigError(f"cannot read leaky_relu slope {k!r}: write leaky_relu:K "
                                  f"for slope 2^-K")
            return cls(name, int(k) if k else 3)
        if k:
            raise ConfigError(f"activation {name} takes no parameter (got {text!r})")
        return cls(name)

    def __str__(self):
        return f"leaky_relu:{self.shift}" if self.name == "leaky_relu" else self.name


@dataclass(frozen=True)
class NetConfig:
    """Network, number formats and training arithmetic.

    Parameters
    ----------
    sizes : tuple of int
        ``(n_0, ..., n_L)``, neurons per layer, inputs first.
    activations : tuple of Activation
        ``f_1 .. f_L``.
    act_format : SQ
        Inputs ``x``, targets ``y`` and activations ``a_l``.
    weight_format : SQ
        Weights and biases as the multipliers see them.
    master_extra_bits : int
        Extra fraction bits of the stored (master) weights below ``weight_format``; the
        multiplier sees the master weight with these bits dropped (floor).
    sens_format : SQ
        Sensitivities ``lam_l``.
    lr_shift : int
        Learning rate ``eta = 2**-lr_shift``, applied to the gradient *summed* over a mini-batch.
    rounding : str
        Rounding of the weight update: ``"stochastic"`` (xorshift LFSR) or ``"nearest"``.
    pes : tuple of int
        Processing elements per layer; PE ``p`` of layer ``l`` serves rows ``p, p + P, ...``
        (its folds ``0, 1, ...``).
    mults : tuple of int
        Multiplier lanes per PE, per layer: lane ``k`` of a PE serves its folds
        ``k, k + M, ...``, all on the same column at once, each lane with two multipliers
        (the weight's: forward and backward; the gradient's).
    max_batch : int
        Largest mini-batch; sizes the gradient accumulators so they cannot overflow.
    engine : str
        ``"systolic"`` (PEs per layer as ``pes`` and ``mults`` say) or ``"serial"`` (one lane
        for every layer, in turn; ``pes`` and ``mults`` all 1).
    """

    sizes: tuple
    activations: tuple
    loss: str = "mse"
    act_format: SQ = SQ(4, 12)
    weight_format: SQ = SQ(3, 13)
    master_extra_bits: int = 8
    sens_format: SQ = SQ(2, 14)
    lr_shift: int = 5
    rounding: str = "stochastic"
    pes: tuple = None
    mults: tuple = None
    max_batch: int = 256
    engine: str = "systolic"

    def __post_init__(self):
        object.__setattr__(self, "sizes", tuple(int(n) for n in self.sizes))
        object.__setattr__(self, "activations", tuple(
            a if isinstance(a, Activation) else Activation.parse(a) for a in self.activations))
        if self.pes is None:
            object.__setattr__(self, "pes", (1,) * (len(self.sizes) - 1)
                               if self.engine == "serial" else tuple(self.sizes[1:]))
        object.__setattr__(self, "pes", tuple(int(p) for p in self.pes))
        if self.mults is None:
            object.__setattr__(self, "mults", (1,) * len(self.pes))
        object.__setattr__(self, "mults", tuple(int(k) for k in self.mults))
        self._validate()

    # -- derived facts ------------------------------------------------------------------------
    @property
    def L(self):
        """Number of layers with weights."""
        return len(self.sizes) - 1

    @property
    def master_format(self):
        """Stored weights: ``weight_format`` with ``master_extra_bits`` more fraction bits."""
        return SQ(self.weight_format.int_bits,
                  self.weight_format.frac_bits + self.master_extra_bits)

    def row_length(self, l):
        """Weights in a row of layer ``l`` (1-based), bias included."""
        return self.sizes[l - 1] + 1

    def rows_of_pe(self, l, p):
        """Rows of layer ``l`` that PE ``p`` serves, in the order it serves them."""
        return list(range(p, self.sizes[l], self.pes[l - 1]))

    def generators(self, l):
        """Lanes of layer ``l`` in LFSR order: ``(pe, lane, rows)`` with the rows that lane
        updates, in order (generator number ``pe * M + lane``)."""
        M = self.mults[l - 1]
        return [(p, k, self.rows_of_pe(l, p)[k::M]) for p in range(self.pes[l - 1])
                for k in range(M)]

    @property
    def multipliers(self):
        """Multipliers of the layer engines: a PE has a lane per fold up to ``mults``, two
        multipliers each (the output unit's squarer not counted); the serial engine's lane."""
        if self.engine == "serial":
            return 2
        return sum(2 * min(k, len(self.rows_of_pe(l, p)))
                   for l, (P, k) in enumerate(zip(self.pes, self.mults), 1) for p in range(P))

    @property
    def forward_frac(self):
        """Fraction bits of a forward dot product ``z``."""
        return self.weight_format.frac_bits + self.act_format.frac_bits

    @property
    def backward_frac(self):
        """Fraction bits of a backward dot product ``W^T lam``."""
        return self.weight_format.frac_bits + self.sens_format.frac_bits

    @property
    def gradient_frac(self):
        """Fraction bits of a gradient accumulator ``sum lam a``."""
        return self.sens_format.frac_bits + self.act_format.frac_bits

    @property
    def update_shift(self):
        """Right shift taking ``eta * gradient`` to the master-weight fraction."""
        return self.gradient_frac + self.lr_shift - self.master_format.frac_bits

    def forward_acc_bits(self, l):
        return accumulator_bits(self.weight_format, self.act_format, self.row_length(l))

    def backward_acc_bits(self, l):
        """Accumulator of ``(W_l^T lam_l)_i``, summing over the ``n_l`` rows."""
        return accumulator_bits(self.weight_format, self.sens_format, self.sizes[l])

    @property
    def gradient_acc_bits(self):
        return accumulator_bits(self.sens_format, self.act_format, self.max_batch)

    @property
    def loss_frac(self):
        """Fraction bits of the on-chip loss sum ``sum (a_L - y)**2`` (the loss is half of it)."""
        return 2 * self.act_format.frac_bits

    def macs_per_sample(self):
        """Multiply-accumulates of one training sample: forward, backward (layers >= 2) and
        gradient."""
        total = 0
        for l in range(1, self.L + 1):
            total += 2 * self.sizes[l] * self.row_length(l)
            if l >= 2:
                total += self.sizes[l] * self.sizes[l - 1]
        return total

    # -- validation ---------------------------------------------------------------------------
    def _validate(self):
        if len(self.sizes) < 2:
            raise ConfigError("a network needs at least two sizes (inputs-outputs), "
                              "e.g. --net 64-16-10")
        if any(not 1 <= n <= MAX_WIDTH for n in self.sizes):
            raise ConfigError(f"layer sizes {'-'.join(map(str, self.sizes))} not allowed: "
                              f"each must be 1..{MAX_WIDTH}")
        if len(self.activations) != self.L:
            raise ConfigError(f"{self.L} layer(s) need {self.L} activation(s), got "
                              f"{len(self.activations)} ({','.join(map(str, self.activations))})")
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r}: allowed are {', '.join(LOSSES)}")
        if self.rounding not in ROUNDING_MODES:
            raise ConfigError(f"unknown rounding {self.rounding!r}: allowed are "
                              f"{', '.join(ROUNDING_MODES)}")
        if len(self.pes) != self.L or any(not 1 <= p <= n for p, n in
                                          zip(self.pes, self.sizes[1:])):
            raise ConfigError(f"processing elements {self.pes} not allowed: one count per layer, "
                              f"each between 1 and the layer's size")
        if self.act_format.int_bits < 2:
            raise ConfigError(f"activation format {self.act_format} cannot hold the bias input "
                              f"1.0: give it at least 2 integer bits (sign included)")
        if len(self.mults) != self.L or any(not 1 <= k <= 8 for k in self.mults):
            raise ConfigError(f"multiplier lanes per PE {self.mults} not allowed: one count per "
                              f"layer, each 1..8")
        if self.engine not in ENGINES:
            raise ConfigError(f"unknown engine {self.engine!r}: allowed are {', '.join(ENGINES)}")
        if self.engine == "serial" and (any(p != 1 for p in self.pes) or
                                        any(k != 1 for k in self.mults)):
            raise ConfigError(f"the serial engine has one lane for every layer: give it --pes "
                              f"{','.join('1' * self.L)} and no --mults (got --pes "
                              f"{','.join(map(str, self.pes))} --mults "
                              f"{','.join(map(str, self.mults))})")
        if not 0 <= self.master_extra_bits <= 16:
            raise ConfigError("master-weight extra bits must be 0..16")
        if self.master_format.width > 32:
            raise ConfigError(f"master weights {self.master_format} are wider than 32 bits: "
                              f"use fewer extra bits or a narrower weight format")
        if not 0 <= self.lr_shift <= 24:
            raise ConfigError(f"learning-rate shift {self.lr_shift} not allowed: 0..24")
        if not 1 <= self.update_shift <= 32:
            raise ConfigError(f"the weight update would drop {self.update_shift} bits of the "
                              f"gradient; it must drop 1..32 (the LFSR gives 32 random bits): "
                              f"change lr_shift or master_extra_bits")
        if not 1 <= self.max_batch <= 65536:
            raise ConfigError("max_batch must be 1..65536")
        widest = max([self.gradient_acc_bits] + [self.forward_acc_bits(l) for l in
                     range(1, self.L + 1)] + [self.backward_acc_bits(l) for l in
                     range(1, self.L + 1)])
        if widest > 62:
            raise ConfigError(f"an accumulator would need {widest} bits (> 62): use narrower "
                              f"formats, smaller layers or a smaller max_batch")

    # -- (de)serialisation --------------------------------------------------------------------
    def to_dict(self):
        d = asdict(self)
        d["activations"] = [str(a) for a in self.activations]
        for k in ("act_format", "weight_format", "sens_format"):
            d[k] = [getattr(self, k).int_bits, getattr(self, k).frac_bits]
        d["sizes"], d["pes"], d["mults"] = list(self.sizes), list(self.pes), list(self.mults)
        return d

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        for k in ("act_format", "weight_format", "sens_format"):
            if k in d:
                d[k] = SQ(*d[k])
        return cls(**d)

    @classmethod
    def from_strings(cls, net, act=None, pes=None, mults=None, **kwargs):
        """Build from command-line text: ``net="64-16-10"``, ``act="relu,identity"``,
        ``pes="8,2"``; formats as ``"4.12"``. Raises :class:`ConfigError` with a one-line
        message on bad input."""
        try:
            sizes = [int(s) for s in str(net).split("-")]
        except ValueError:
            raise ConfigError(f"cannot read network {net!r}: write layer sizes joined by '-', "
                              f"e.g. 64-16-10") from None
        L = len(sizes) - 1
        acts = ([a for a in act.split(",")] if act else
                ["relu"] * (L - 1) + ["identity"])
        def counts(text, what):
            if text is None or isinstance(text, (tuple, list)):
                return text
            try:
                return [int(p) for p in str(text).split(",")]
            except ValueError:
                raise ConfigError(f"cannot read {what} {text!r}: write counts joined by ',', "
                                  f"e.g. 8,2") from None
        pes = counts(pes, "PEs per layer")
        mults = counts(mults, "multiplier lanes per PE")
        for k in ("act_format", "weight_format", "sens_format"):
            if isinstance(kwargs.get(k), str):
                try:
                    kwargs[k] = SQ.parse(kwargs[k])
                except FormatError as e:
                    raise ConfigError(str(e)) from None
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        try:
            return cls(tuple(sizes), tuple(acts), pes=pes, mults=mults, **kwargs)
        except FormatError as e:
            raise ConfigError(str(e)) from None

    @property
    def net_text(self):
        """Layer sizes as typed: ``64-16-10``."""
        return "-".join(map(str, self.sizes))

    @property
    def pes_text(self):
        """PEs per layer (``8,2``), written ``PxM`` where a layer's PEs have ``M`` multiplier
        lanes each (``8x2,2`` for ``--pes 8,2 --mults 2,1``); ``serial`` for the serial
        engine."""
        if self.engine == "serial":
            return "serial"
        return ",".join(f"{p}x{k}" if k > 1 else str(p) for p, k in zip(self.pes, self.mults))

    def describe(self):
        """One line for humans."""
        return (f"net {'-'.join(map(str, self.sizes))} "
                f"act {','.join(map(str, self.activations))} "
                f"a/x/y {self.act_format} W {self.weight_format}+{self.master_extra_bits} "
                f"lam {self.sens_format} eta 2^-{self.lr_shift} {self.rounding} "
                + (f"PEs {','.join(map(str, self.pes))}" if self.engine == "systolic" else
                   "serial engine")
                + (f" x {','.join(map(str, self.mults))} lanes"
                   if any(k > 1 for k in self.mults) else ""))
