"""Out-of-fold predictions of one (model, task): what the bootstrap over clips resamples.

Stored in the run directory as ``predictions/<model>__<task>.npz`` (NumPy ``.npz``, no pickles), written
atomically through :func:`write_predictions` (the one place that knows the file name, so the run
directory's owner can take it over). Arrays:

``ids`` (N,)          clip ids, in the order of ``clips/<task>.csv``
``classes`` (C,)      the task's fixed label set (sorted); every code below indexes it
``y`` (N,)            true class codes
``groups`` (N,)       the group each clip was folded by ('' when folds were not grouped)
``probes`` (P,)       probe names, in the order of the ``pred`` axis
``fold_of`` (R, N)    the fold id (``repeat * n_splits + k``) that held each clip out, per repeat
``pred`` (R, P, L, N) predicted class codes, per repeat, probe, layer and clip
``n_splits`` ()       folds per repeat
``key`` ()            the probe cache key of the run that wrote it (a stale file is recomputed)
``tuned`` ()          JSON list of the hyper-parameters chosen by ``--tune`` per (layer, probe, fold)
``model``, ``task`` () the names they belong to
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SpeechprobeError
from ..files import atomic_write
from ..rundir import slug

PREDICTIONS_DIR = "predictions"


@dataclass
class OOFPredictions:
    """Out-of-fold predicted class codes per repeat, probe, layer and clip (see the module docstring)."""

    classes: np.ndarray
    y: np.ndarray
    probes: tuple[str, ...]
    fold_of: np.ndarray
    pred: np.ndarray
    n_splits: int
    ids: np.ndarray | None = None
    groups: np.ndarray | None = None
    key: str = ""
    tuned: list[dict] = field(default_factory=list)
    model: str = ""
    task: str = ""

    @property
    def n_layers(self) -> int:
        return int(self.pred.shape[2])

    def to_bytes(self) -> bytes:
        n = len(self.y)
        arrays = {
            "ids": np.asarray(self.ids if self.ids is not None else np.arange(n).astype(str)).astype(str),
            "classes": np.asarray(self.classes).astype(str),
            "y": np.asarray(self.y, dtype=np.int16),
            "groups": np.asarray(self.groups if self.groups is not None else np.full(n, "")).astype(str),
            "probes": np.asarray(self.probes, dtype=str),
            "fold_of": np.asarray(self.fold_of, dtype=np.int32),
            "pred": np.asarray(self.pred, dtype=np.int16),
            "n_splits": np.asarray(self.n_splits),
            "key": np.asarray(self.key),
            "tuned": np.asarray(json.dumps(self.tuned)),
            "model": np.asarray(self.model),
            "task": np.asarray(self.task),
        }
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()

    @classmethod
    def from_file(cls, path: Path) -> OOFPredictions:
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(
                    classes=z["classes"],
                    y=z["y"].astype(np.int64),
                    probes=tuple(str(p) for p in z["probes"]),
                    fold_of=z["fold_of"].astype(np.int64),
                    pred=z["pred"],
                    n_splits=int(z["n_splits"]),
                    ids=z["ids"],
                    groups=z["groups"],
                    key=str(z["key"]),
                    tuned=json.loads(str(z["tuned"])),
                    model=str(z["model"]),
                    task=str(z["task"]),
                )
        except (OSError, KeyError, ValueError) as e:
            raise SpeechprobeError(f"{path}: not a readable predictions file ({e}); rerun the probes") from None


def predictions_path(run_dir: Path, model: str, task: str) -> Path:
    """``RUN/predictions/<model>__<task>.npz``."""
    return Path(run_dir) / PREDICTIONS_DIR / f"{slug(model)}__{slug(task)}.npz"


def write_predictions(run_dir: Path, model: str, task: str, oof: OOFPredictions) -> Path:
    """Atomically write one (model, task)'s out-of-fold predictions into the run directory."""
    path = predictions_path(run_dir, model, task)
    oof.model, oof.task = model, task
    atomic_write(path, oof.to_bytes())
    return path


def read_predictions(run_dir: Path, model: str, task: str) -> OOFPredictions | None:
    """The stored predictions of (model, task), or None when there are none."""
    path = predictions_path(run_dir, model, task)
    return OOFPredictions.from_file(path) if path.is_file() else None
