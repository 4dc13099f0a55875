"""The probe registry: each probe declares its facts once, in a :class:`ProbeSpec`; every other module asks here.

Probes come from the built-in specs below, from installed packages that declare an entry point in the
``speechprobe.probes`` group (pointing at a ``ProbeSpec`` or a list of them), and from :func:`register` calls
(a notebook, a test). ``--probes`` accepts every registered name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

from .. import plugins
from ..config import ProbeSettings
from ..errors import ConfigError, SpeechprobeError
from .estimators import KNNProbe, LinearProbe, MLPProbe, ScaledProbe

ENTRY_POINT_GROUP = "speechprobe.probes"
NULLS = ("refit", "revote")  # the permutation-null strategies of .null


@dataclass(frozen=True)
class ProbeSpec:
    """Everything the pipeline needs to know about one probe.

    ``estimator``: a :class:`.estimators.ScaledProbe` class (a scikit-learn classifier that standardises inside
    the training fold); as in scikit-learn, its parameters are its ``__init__``.
    ``settings``: estimator parameter -> the :class:`ProbeSettings` field that sets it (``--knn-k``, ...).
    ``deterministic``: it fits without randomness; otherwise the run's seed is its ``random_state``.
    ``grid``: ``--tune``'s grid, estimator parameter -> values (empty: the probe cannot be tuned).
    ``train_bound``: a count parameter that cannot exceed a fold's training items (KNN's k): checked per fold,
    and the tuning grid keeps only the values that fit (else 1).
    ``kernel``: the name of the batched torch kernel in :data:`.fast.KERNELS` that reproduces the estimator, or None.
    ``null``: its permutation null (:mod:`.null`): ``"refit"`` per shuffle, or ``"revote"`` (neighbours found
    once, only the votes recounted per shuffle; for a uniform-vote nearest-neighbour estimator).
    """

    name: str
    estimator: type[ScaledProbe]
    settings: Mapping[str, str] = field(default_factory=dict)
    deterministic: bool = True
    grid: Mapping[str, Sequence] = field(default_factory=dict)
    train_bound: str | None = None
    kernel: str | None = None
    null: str = "refit"

    def __post_init__(self) -> None:
        if not (isinstance(self.estimator, type) and issubclass(self.estimator, ScaledProbe)):
            raise SpeechprobeError(f"probe {self.name!r}: {self.estimator!r} is not a ScaledProbe class")
        params = set(self.estimator._get_param_names())
        wanted = [*self.settings, *self.grid, *([self.train_bound] if self.train_bound else [])]
        wanted += [] if self.deterministic else ["random_state"]
        known = {f.name for f in fields(ProbeSettings)}
        problems = [f"no parameter {p!r}" for p in wanted if p not in params]
        problems += [f"no ProbeSettings field {f!r}" for f in self.settings.values() if f not in known]
        problems += [] if self.null in NULLS else [f"null {self.null!r} is not {' or '.join(NULLS)}"]
        if problems:
            raise SpeechprobeError(f"probe {self.name!r}: {'; '.join(problems)}")

    def make(self, seed: int = 0, settings: ProbeSettings | None = None) -> ScaledProbe:
        """A fresh estimator with the run's ``settings`` (default: the defaults) and, unless deterministic, ``seed``."""
        settings = settings or ProbeSettings()
        params = {param: getattr(settings, name) for param, name in self.settings.items()}
        return self.estimator(**params, **({} if self.deterministic else {"random_state": seed}))


# The built-in probes, in the order ``--probes`` lists them; each grid is the probe's capacity or regularisation knob.
_PROBES: dict[str, ProbeSpec] = {
    spec.name: spec
    for spec in (
        ProbeSpec(
            "knn",
            KNNProbe,
            settings={"n_neighbors": "knn_k"},
            grid={"n_neighbors": [1, 5, 15]},
            train_bound="n_neighbors",
            kernel="knn",
            null="revote",
        ),
        ProbeSpec(
            "mlp",
            MLPProbe,
            settings={
                "hidden_units": "mlp_hidden",
                "alpha": "mlp_alpha",
                "max_iter": "mlp_epochs",
                "solver": "mlp_solver",
                "early_stopping": "mlp_early_stopping",
                "early_stopping_min_train": "mlp_early_stopping_min_train",
            },
            deterministic=False,
            grid={"alpha": [1e-4, 1e-2, 1.0]},
            kernel="mlp",
        ),
        ProbeSpec("linear", LinearProbe, settings={"C": "linear_c"}, grid={"C": [0.01, 0.1, 1.0, 10.0]}),
    )
}
_loaded = False  # whether the installed plugins were loaded


def _load_plugins() -> None:
    """The probes of installed packages' ``speechprobe.probes`` entry points, once."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for spec in plugins.declared(ENTRY_POINT_GROUP, "probe", ProbeSpec):
        register(spec)


def register(spec: ProbeSpec) -> ProbeSpec:
    """Add a probe (registering the same name again replaces it) and return it."""
    if not isinstance(spec, ProbeSpec):
        raise SpeechprobeError(f"{spec!r} is not a speechprobe.probes.ProbeSpec")
    _load_plugins()
    _PROBES[spec.name] = spec
    return spec


def probe_names() -> tuple[str, ...]:
    """Every registered probe name, in registration order."""
    _load_plugins()
    return tuple(_PROBES)


def probe_spec(name: str) -> ProbeSpec:
    """The spec of probe ``name``."""
    _load_plugins()
    try:
        return _PROBES[name]
    except KeyError:
        raise ConfigError(f"unknown probe {name!r}; choose from {', '.join(_PROBES)}") from None


def make_probe(name: str, seed: int = 0, settings: ProbeSettings | None = None) -> ScaledProbe:
    """A fresh, seeded probe by short name (one of :func:`probe_names`) with ``settings`` (default: the defaults)."""
    return probe_spec(name).make(seed, settings)


def probe_params(names, seed: int = 0, settings: ProbeSettings | None = None) -> dict[str, dict]:
    """Every hyper-parameter of each named probe and of its scikit-learn classifier, for manifest.json."""
    out = {}
    for name in names:
        probe = make_probe(name, seed, settings)
        out[name] = {"probe": probe.get_params(), "classifier": probe._classifier().get_params()}
    return out
