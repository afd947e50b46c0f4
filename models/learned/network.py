"""A learned field: a small MLP that predicts one field kind, converted through the path.

The network sees x ∈ R² and a Fourier embedding of t, and predicts the quantity it was trained
on (ε for VP diffusion, the velocity for linear flow matching; x̂ or the score on request).
:class:`LearnedField` has the exact field's signature ``field(x, t, want) -> dict`` (see
:class:`models.fields.ExactField`), so every sampler, overlay and density runs on either.

The ends of the path: converting ε to the score divides by b, which is 0 at t = 0 (and ε̂ → x̂
divides by a, small at the VP noise end). The exact field avoids this in closed form; a network
cannot, so times are clamped into [t_min, 1] before the network and the conversion (t_min = 1e-3,
where b ≈ 0.01 for the default VP schedule and the network was trained). The Heun sampler's last
step and forward runs evaluate at t = 0 exactly; they get the field at t_min, which is finite.

Class-conditional networks (``n_classes`` > 0, for classifier-free guidance) also see a class:
a learned embedding of the label, one row per class and one more, index ``n_classes``, for "no
class" (the null token, which label dropout trained as the unconditional field). A
:class:`LearnedField` evaluates one class, or the null token when its label is None.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from models.paths import FIELD_KINDS, GaussianPath

T_MIN = 1e-3
NATIVE = {"vp": "eps", "fm": "velocity", "trig": "velocity"}  # what each process trains on
MAX_CLASSES = 64


@dataclass(frozen=True)
class Architecture:
    """Everything needed to rebuild a network and read its output (stored in checkpoints).

    Attributes:
        width, depth: hidden width and number of hidden layers of the MLP.
        n_freq: number of Fourier frequencies of the time embedding (2 n_freq features).
        predicts: the field kind the network outputs (``eps``, ``velocity``, ``x0``, ``score``).
        process: the path it was trained on (``vp``, ``fm`` or ``trig``).
        schedule, beta_min, beta_max: the VP schedule (ignored for ``fm``).
        t_min: evaluation times are clamped into [t_min, 1].
        n_classes: classes of a class-conditional network (0..64); 0 is unconditional.
    """

    width: int = 128
    depth: int = 3
    n_freq: int = 8
    predicts: str = "velocity"
    process: str = "fm"
    schedule: str = "linear"
    beta_min: float = 0.1
    beta_max: float = 20.0
    t_min: float = T_MIN
    n_classes: int = 0

    def __post_init__(self) -> None:
        if self.predicts not in FIELD_KINDS:
            raise ValueError(f"predicts must be one of {FIELD_KINDS}, got {self.predicts!r}")
        if not (1 <= self.width <= 1024 and 1 <= self.depth <= 8 and 1 <= self.n_freq <= 64):
            raise ValueError(
                f"architecture out of range: width {self.width}, depth {self.depth}, "
                f"n_freq {self.n_freq}"
            )
        n = self.n_classes
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_CLASSES:
            raise ValueError(f"n_classes must be an integer in 0..{MAX_CLASSES}, got {n!r}")

    def to_dict(self) -> dict:
        """The fields as a dict; ``n_classes`` only when > 0, so that an unconditional network's
        checkpoint is byte for byte what it was before classes existed (and older readers,
        which refuse unknown keys, still read it)."""
        d = asdict(self)
        if not self.n_classes:
            del d["n_classes"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Architecture:
        """Rebuild from :meth:`to_dict`; unknown or missing keys raise ValueError (but for
        ``n_classes``, which files written before it existed lack: 0)."""
        d = {"n_classes": 0, **d}
        names = set(cls.__dataclass_fields__)
        if set(d) != names:
            raise ValueError(f"architecture keys {sorted(d)} differ from {sorted(names)}")
        return cls(**d)

    def path(self) -> GaussianPath:
        """The Gaussian path this network belongs to."""
        from models.paths import make_path
        from models.schedules import make_schedule

        return make_path(self.process, make_schedule(self.schedule, self.beta_min, self.beta_max))


class FieldMLP(nn.Module):
    """MLP (x, t) ↦ R²: [x, sin(ω_k t), cos(ω_k t)] → depth × (Linear, SiLU) → Linear.

    Frequencies ω_k are geometric from 1 to 200 rad per unit t, so the embedding resolves both
    the slow middle of the path and the fast change near the data end.

    With ``arch.n_classes`` > 0 a class embedding (``label_embed``, (n_classes + 1, width), the
    last row the null token) is added to the first hidden layer's pre-activation, which is the
    same as feeding a one-hot label to the first layer. It starts at zero: the untrained
    network ignores the class, and every class starts from the shared field. Unconditional
    networks have no such parameter, so their state dicts are those of before.
    """

    def __init__(self, arch: Architecture):
        super().__init__()
        self.n_classes = arch.n_classes
        self.register_buffer(
            "freqs", torch.logspace(0.0, math.log10(200.0), arch.n_freq), persistent=False
        )
        layers: list[nn.Module] = []
        width_in = 2 + 2 * arch.n_freq
        for _ in range(arch.depth):
            layers += [nn.Linear(width_in, arch.width), nn.SiLU()]
            width_in = arch.width
        layers.append(nn.Linear(width_in, 2))
        self.net = nn.Sequential(*layers)
        if self.n_classes:  # created after the layers: their seeded initial weights stay put
            self.label_embed = nn.Embedding(self.n_classes + 1, arch.width)
            nn.init.zeros_(self.label_embed.weight)

    def forward(self, x: Tensor, t: Tensor, label: Tensor | None = None) -> Tensor:
        """Args: x (N, 2), t (N,), label (N,) int64 in 0..n_classes (n_classes: the null
        token) or None (the null token for every row; the only choice when unconditional).
        Returns (N, 2)."""
        phase = t[:, None] * self.freqs[None]
        features = torch.cat([x, torch.sin(phase), torch.cos(phase)], 1)
        if not self.n_classes:
            if label is not None:
                raise ValueError("a label was given to an unconditional network")
            return self.net(features)
        if label is None:
            label = torch.full((len(x),), self.n_classes, dtype=torch.long, device=x.device)
        hidden = self.net[0](features) + self.label_embed(label)
        for layer in self.net[1:]:
            hidden = layer(hidden)
        return hidden


def build_network(arch: Architecture, seed: int | None = None) -> FieldMLP:
    """A freshly initialised network; ``seed`` makes the initial weights reproducible."""
    if seed is None:
        return FieldMLP(arch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return FieldMLP(arch)


class LearnedField:
    """A network's prediction as x̂, ε̂, score and velocity (docs/MATH.md §3).

    Args:
        net: ``net(x (N, 2), t (N,)) -> (N, 2)``, the prediction of kind ``predicts``.
        path: the Gaussian path the network was trained on.
        predicts: the kind the network outputs.
        t_min: times are clamped into [t_min, 1] (see the module docstring).
        labeler: optional object with ``nearest_label(x, t)`` (an exact field) used to colour
            generated particles; without it every particle gets label 0.
        label: the class a class-conditional network is asked for (0..n_classes − 1), or None
            for its null token (the unconditional field); an unconditional network takes None
            only. A bad label raises ValueError.
    """

    def __init__(
        self,
        net: Callable[..., Tensor],
        path: GaussianPath,
        predicts: str,
        t_min: float = T_MIN,
        labeler=None,
        label: int | None = None,
    ):
        if predicts not in FIELD_KINDS:
            raise ValueError(f"predicts must be one of {FIELD_KINDS}, got {predicts!r}")
        self.net, self.path, self.predicts = net, path, predicts
        self.t_min, self.labeler = float(t_min), labeler
        self.label = self._checked(label)

    @classmethod
    def from_network(
        cls, net: FieldMLP, arch: Architecture, labeler=None, label: int | None = None
    ) -> LearnedField:
        """The field of a :class:`FieldMLP` built for ``arch`` (of class ``label``)."""
        return cls(net, arch.path(), arch.predicts, arch.t_min, labeler, label)

    @property
    def n_classes(self) -> int:
        """The network's classes: 0 for an unconditional network or a plain callable."""
        return int(getattr(self.net, "n_classes", 0) or 0)

    def _checked(self, label) -> int | None:
        if label is None:
            return None
        n = self.n_classes
        if n == 0:
            raise ValueError(f"class {label!r} asked of an unconditional network (it has none)")
        try:  # any integer (a NumPy or 0-d tensor one too), but not a bool, a float or a string
            index = None if isinstance(label, bool) else operator.index(label)
        except TypeError:
            index = None
        if index is None or not 0 <= index < n:
            raise ValueError(f"class must be an integer in 0..{n - 1}, got {label!r}")
        return index

    def with_label(self, label: int | None) -> LearnedField:
        """The same network (shared, not copied) asked for class ``label`` (None: the null
        token); this field is unchanged."""
        return type(self)(self.net, self.path, self.predicts, self.t_min, self.labeler, label)

    @property
    def work_per_point(self) -> int:
        """Work per point and evaluation in the exact field's units (one exponential), for
        models/accel/parallel.py: a network's weights / 50 (measured on this CPU: a width-128,
        depth-3 network in two row blocks was faster from N = 1000 on, slower at N = 500);
        0 (unknown) for a plain callable."""
        if not isinstance(self.net, nn.Module):
            return 0
        return sum(p.numel() for p in self.net.parameters()) // 50

    def _net_on(self, x: Tensor):
        net = self.net
        if isinstance(net, nn.Module):
            param = next(net.parameters())
            if param.device != x.device:
                net.to(x.device)  # follow the input, like the exact field
        return net

    def __call__(self, x: Tensor, t: float | Tensor, want=("velocity",)) -> dict[str, Tensor]:
        """Evaluate at one time for a batch of points.

        Args:
            x: positions, shape (N, 2).
            t: a scalar time; clamped into [t_min, 1].
            want: any of ``x0``, ``eps``, ``score``, ``velocity``.

        Returns:
            a dict with one (N, 2) tensor per requested kind, in the dtype of x.
        """
        for kind in want:
            if kind not in FIELD_KINDS:
                raise ValueError(f"unknown field kind {kind!r}")
        t = min(max(float(t), self.t_min), 1.0)
        net = self._net_on(x)
        with torch.set_grad_enabled(torch.is_grad_enabled() and x.requires_grad):
            tt = torch.full((len(x),), t, dtype=torch.float32, device=x.device)
            if self.label is None:  # a plain callable takes (x, t) only
                value = net(x.float(), tt)
            else:
                label = torch.full((len(x),), self.label, dtype=torch.long, device=x.device)
                value = net(x.float(), tt, label)
            value = value.to(x.dtype)
            t64 = torch.tensor(t, dtype=torch.float64)
            return {k: self.path.convert(value, x, t64, self.predicts, k) for k in want}

    def nearest_label(self, x: Tensor, t: float) -> Tensor:
        """Colour label per particle, shape (N,): the labeler's, else all 0."""
        if self.labeler is not None:
            return self.labeler.nearest_label(x, t)
        return torch.zeros(len(x), dtype=torch.long, device=x.device)
