"""openSMILE functionals as one-layer hand-crafted baselines (the paralinguistics field's standard ones).

- ``egemaps``: the extended Geneva Minimalistic Acoustic Parameter Set, eGeMAPSv02 (Eyben et al. 2016),
  88 functionals: F0 (semitones re 27.5 Hz), loudness, jitter, shimmer, HNR, formants, spectral slope,
  alpha ratio, Hammarberg index, MFCC 1-4, rates of voiced and unvoiced segments. A default baseline.
- ``compare2016``: the ComParE 2016 challenge set (Schuller et al. 2016), 6373 functionals. An option
  (``--baselines ...,compare2016``), not a default: as fast as eGeMAPS but 72 times wider, so every probe
  and analysis of the baseline costs more (benchmarks/README.md).

Both through the ``opensmile`` package (audEERING's Python wrapper; the openSMILE binary and the
feature-set configs ship in its wheel), one clip at a time, at 16 kHz, clips of a batch in parallel
threads (the native call releases the GIL). The functionals summarise the whole clip already, so
``--pooling`` does not change them. openSMILE gives NaN functionals for a clip under about 75 ms; such
clips are zero-padded to 128 ms first, as the librosa recipes pad them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ..errors import SpeechprobeError
from ..parallel import ordered_map
from .base import AdapterInfo, ModelAdapter
from .family import Checkpoint, Family, LoadContext
from .handcrafted import min_length

SAMPLE_RATE = 16000
FEATURE_SETS = {"egemaps": ("eGeMAPSv02", 88), "compare2016": ("ComParE_2016", 6373)}  # name -> (set, dims)
_VERSION = "1"  # bump when the recipe changes (part of the cache key)


def smile(name: str):
    """An ``opensmile.Smile`` computing the functionals of feature set ``name`` (a key of FEATURE_SETS)."""
    try:
        import opensmile
    except ImportError:
        raise SpeechprobeError(f"the {name} baseline needs openSMILE: pip install opensmile") from None
    feature_set = getattr(opensmile.FeatureSet, FEATURE_SETS[name][0])
    return opensmile.Smile(feature_set=feature_set, feature_level=opensmile.FeatureLevel.Functionals)


class OpenSmileAdapter(ModelAdapter):
    """An openSMILE feature set's functionals as a one-layer model (layer 0)."""

    def __init__(self, name: str = "egemaps", workers: int | None = None) -> None:
        self.smile = smile(name)  # first: names the missing package
        import opensmile

        self.workers = workers or min(4, os.cpu_count() or 1)
        version = opensmile.__version__
        recipe = f"{name}:{_VERSION}:{FEATURE_SETS[name][0]}:opensmile {version}"
        source = f"opensmile {version} ({FEATURE_SETS[name][0]} functionals)"
        # frame rate: openSMILE's low-level descriptors, 10 ms hop
        self.info = AdapterInfo.of_recipe(name, FAMILY_NAME, source, recipe, len(self.smile.feature_names), 100.0)

    def functionals(self, y: np.ndarray) -> np.ndarray:
        """One clip's functionals (float64, ``hidden_size`` values)."""
        clip = min_length(np.asarray(y, dtype=np.float32))
        return self.smile.process_signal(clip, SAMPLE_RATE).to_numpy(dtype=np.float64)[0]

    def forward(self, batch: Sequence[np.ndarray], pooling: str = "mean") -> np.ndarray:
        """Functionals of whole clips; ``pooling`` does not apply."""
        rows = list(ordered_map(self.functionals, list(batch), workers=self.workers))
        return np.stack(rows)[:, None, :].astype(np.float32)


def _load(ctx: LoadContext) -> OpenSmileAdapter:
    return OpenSmileAdapter(ctx.name or "egemaps")


FAMILY_NAME = "opensmile"
FAMILY = Family(
    FAMILY_NAME,
    _load,
    title="openSMILE functionals",
    checkpoints=(
        Checkpoint("egemaps", num_layers=1, hidden_size=88, packaged=True, baseline=True, requires="opensmile"),
        Checkpoint("compare2016", num_layers=1, hidden_size=6373, packaged=True, requires="opensmile"),
    ),
    layer0="the feature set's functionals over the whole clip (the only layer)",
    source="opensmile",
    has_weights=False,
)
FAMILIES = (FAMILY,)
