"""The run directory: results.csv, summary.csv, manifest.json, figures/ (see DESIGN.md)."""

from __future__ import annotations

import io
import json
import os
import platform
import tempfile
from pathlib import Path

import pandas as pd

from ._version import __version__
from .errors import SpeechprobeError

RESULT_COLUMNS = ["model", "task", "layer", "probe", "fold", "metric", "value"]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def ensure_writable(out: Path) -> None:
    """Create ``out`` or fail with one line naming it."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise SpeechprobeError(
            f"cannot write to the output directory {out} ({e.strerror or e}); pass another --out"
        ) from None


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    """Atomically write a CSV (floats at full precision, so reruns compare byte for byte)."""
    buf = io.StringIO()
    frame.to_csv(buf, index=False, lineterminator="\n")
    atomic_write_bytes(path, buf.getvalue().encode())


def write_json(path: Path, obj: object) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def sort_results(rows: pd.DataFrame) -> pd.DataFrame:
    """Canonical row order: model, task, layer, probe, fold, metric."""
    frame = rows[RESULT_COLUMNS].copy()
    frame["layer"] = frame["layer"].astype("Int64")
    return frame.sort_values(["model", "task", "layer", "probe", "fold", "metric"], kind="stable").reset_index(
        drop=True
    )


def versions() -> dict[str, str]:
    """Library versions that can change the numbers."""
    import librosa
    import numpy
    import sklearn
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "speechprobe": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "sklearn": sklearn.__version__,
        "numpy": numpy.__version__,
        "librosa": librosa.__version__,
    }
