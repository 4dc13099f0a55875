"""The run directory and its one owner, :class:`RunDir` (layout in DESIGN.md and ARCHITECTURE.md).

``RunDir`` knows every file a run writes (:data:`STAGE_FILES`), their columns and readers, writes
them atomically (:func:`speechprobe.files.atomic_write`), replaces one stage's rows of results.csv
in place (probes or zero-shot) and keeps the run's configuration fingerprints in ``run.json``.

Stages: ``extract`` (clip lists, state.json), ``probe`` (partial results, results/summary, figures,
statistics, report) and ``zeroshot``. Each stage records the fingerprint of the settings that
decide its numbers when it starts (:meth:`RunDir.claim`):

* the same settings again resume the stage (rerun the same command to finish an interrupted run);
* different settings are refused with one line naming the directory, unless ``overwrite`` removes
  that stage's files (and those of the stages built on it) first;
* files of an older run without ``run.json`` are refused unless ``resume`` adopts them or
  ``overwrite`` removes them;
* stages of one directory must read the same data: their ``seed`` and ``n_per_class`` agree.

One process writes a run directory at a time: a command holds :meth:`RunDir.lock` for all of its
work (:mod:`speechprobe.runlock`), and ``claim`` holds it too, so a second run into the same
directory stops with one line naming the first one's pid.

A module that adds files to a run registers them with :func:`register_file`, so a stage's files
are always removed together. Readers use only files of this run: the stage files of a changed
configuration are gone before anything is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import platform
import re
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from ._version import __version__
from .csvsafe import neutralise, restore
from .errors import ConfigError, SpeechprobeError
from .files import TMP_MARK, atomic_write, is_disk_error, temp_name, write_error
from .runlock import LOCK, hold

RESULT_COLUMNS = ["model", "task", "layer", "probe", "fold", "metric", "value"]
RESULT_KEYS = ["model", "task", "layer", "probe", "fold", "metric"]
ZEROSHOT_PREFIX = "zeroshot:"

RUN_FILE = "run.json"
RESULTS = "results.csv"
SUMMARY = "summary.csv"
MANIFEST = "manifest.json"
STATE = "state.json"
CLIPS = "clips"
PARTIAL = "partial"
FIGURES = "figures"
REPORT_FILES = ("report.html", "report.md", "main_table.csv", "main_table.tex")
STAGES = ("extract", "probe", "zeroshot", "finetune")
DOWNSTREAM = {"extract": ("probe", "finetune"), "probe": (), "zeroshot": (), "finetune": ()}
ROW_STAGES = ("probe", "zeroshot")  # stages that own rows of results.csv (zero-shot rows: probe "zeroshot:...")
SHARED_DATA_KEYS = ("seed", "n_per_class")  # the stages that read clips must read the same ones
DATA_STAGES = ("extract", "zeroshot")
MODES = ("auto", "resume", "overwrite")
EVIDENCE = {"extract": (STATE, CLIPS), "probe": (PARTIAL,), "zeroshot": ("zeroshot",)}  # a stage has output
FINETUNE, FINETUNE_CURVES, FINETUNE_DIR = "finetune.csv", "finetune_curves.csv", "finetune"  # speechprobe.finetune
EVIDENCE["finetune"] = (FINETUNE_DIR,)
FINETUNE_LAYERS = "finetune_layers.csv"  # the fine-tuned heads' layer weights (speechprobe.finetune.outputs)

STAGE_FILES: dict[str, list[str]] = {
    "extract": [STATE, CLIPS],
    # and the tables of every registered analysis (analysis.contract.register calls register_file)
    "probe": [
        *(PARTIAL, SUMMARY, FIGURES, "analysis.json", "analyses", "permutation.csv", "chance.csv"),
        *("predictions", "bootstrap.csv"),  # out-of-fold predictions (probes.predictions) and their bootstrap
        *("fingerprints.csv", "similarity.csv", "mdl.csv"),  # the layer analyses (before the registry is read)
    ],
    "zeroshot": [
        "zeroshot",
        "zeroshot_sensitivity.csv",
        "zeroshot_diagnostics.csv",
        "zeroshot_vs_probe.csv",
        "zeroshot_correlation.csv",
        "figures/zeroshot_correlation.png",
        "figures/zeroshot_correlation.svg",
    ],
    "finetune": [FINETUNE_DIR, FINETUNE, FINETUNE_CURVES, FINETUNE_LAYERS],  # per-fold results (resume), tables
}


def register_file(stage: str, name: str) -> None:
    """Declare that ``stage`` writes ``name`` (a file or folder, relative to the run directory)."""
    if stage not in STAGE_FILES:
        raise ValueError(f"unknown stage {stage!r}; one of {', '.join(STAGES)}")
    if name not in STAGE_FILES[stage]:
        STAGE_FILES[stage].append(name)


def slug(name: str) -> str:
    """A file-name-safe, collision-free form of a model or task name.

    Names made only of ``A-Za-z0-9._-`` stay as they are; any other name becomes its safe characters
    (runs of others as ``_``) plus ``-`` and 6 hex digits of its hash, so that two names never share a file.
    """
    text = str(name)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "x"
    if safe == text:
        return safe
    return f"{safe}-{hashlib.sha256(text.encode()).hexdigest()[:6]}"


def fingerprint(config: Mapping[str, Any]) -> str:
    """SHA-256 (20 hex digits) of a configuration's canonical JSON."""
    blob = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


# -- results.csv ----------------------------------------------------------------------------------


def coerce_results(frame: pd.DataFrame) -> pd.DataFrame:
    """The results columns with their types: names as str, ``layer``/``fold`` nullable ints, ``value`` float."""
    missing = [c for c in RESULT_COLUMNS if c not in frame.columns]
    if missing:
        raise SpeechprobeError(f"results table lacks column(s): {', '.join(missing)}")
    out = frame.loc[:, RESULT_COLUMNS].copy()
    for col in ("model", "task", "probe", "metric"):
        out[col] = out[col].astype(str)
    for col in ("layer", "fold"):
        number = pd.to_numeric(out[col].astype("string").replace("", pd.NA), errors="coerce")
        out[col] = number.round().astype("Int64")
    out["value"] = pd.to_numeric(out["value"], errors="coerce").astype(float)
    return out


def read_results(path: str | Path) -> pd.DataFrame:
    """Read a results.csv; empty ``layer`` cells (zero-shot rows) become ``<NA>``."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise SpeechprobeError(f"{path}: not a readable results table ({e})") from None
    return coerce_results(restore(frame))


def sort_results(rows: pd.DataFrame) -> pd.DataFrame:
    """Canonical row order: model, task, layer, probe, fold, metric."""
    frame = rows[RESULT_COLUMNS].copy()
    frame["layer"] = frame["layer"].astype("Int64")
    frame["fold"] = pd.to_numeric(frame["fold"]).astype("Int64")
    return frame.sort_values(RESULT_KEYS, kind="stable").reset_index(drop=True)


def is_zeroshot(probe: pd.Series) -> pd.Series:
    return probe.astype(str).str.startswith(ZEROSHOT_PREFIX)


def check_unique(results: pd.DataFrame, where: str) -> None:
    """Refuse results with two rows for one (model, task, layer, probe, fold, metric): a silent mix."""
    dup = results.duplicated(RESULT_KEYS, keep=False)
    if dup.any():
        first = results[dup].iloc[0]
        raise SpeechprobeError(
            f"{where}: {int(dup.sum())} rows share their keys (e.g. {first['model']} × {first['task']} "
            f"layer {first['layer']} {first['probe']} fold {first['fold']}); results of two runs are mixed"
        )


# -- writing ---------------------------------------------------------------------------------------


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """CSV with ``\\n`` line ends and floats at full precision, so reruns compare byte for byte; text cells a
    spreadsheet would run as formulas are neutralised (:mod:`speechprobe.csvsafe`)."""
    buf = io.StringIO()
    neutralise(frame).to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue().encode()


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    """Atomically write a CSV (see :func:`csv_bytes`)."""
    return atomic_write(path, csv_bytes(frame))


def write_json(path: Path, obj: object) -> Path:
    return atomic_write(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


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


# -- the owner --------------------------------------------------------------------------------------


class RunDir:
    """One run directory: its files, their readers and writers, and the stages' fingerprints."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def clips_file(self, task: str) -> str:
        """Where a task's clip list lives, relative to the run directory."""
        return f"{CLIPS}/{slug(task)}.csv"

    def partial_file(self, key: str) -> Path:
        return self.path(PARTIAL, f"{key}.csv")

    # -- writing -------------------------------------------------------------------------------

    def write_csv(self, rel: str, frame: pd.DataFrame) -> Path:
        return write_csv(self.path(rel), frame)

    def write_json(self, rel: str, obj: object) -> Path:
        return write_json(self.path(rel), obj)

    def write_bytes(self, rel: str, data: bytes) -> Path:
        return atomic_write(self.path(rel), data)

    def create(self) -> None:
        """Create the directory, or fail with one line naming it (the write test's file is this process's own:
        two runs started together into one ``--out`` must reach the lock, which refuses one of them)."""
        probe = temp_name(self.path(".write-test"))
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise SpeechprobeError(
                f"cannot write to the output directory {self.root} ({e.strerror or e}); pass another --out"
            ) from None

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the directory (created if need be) for this command; a held one raises ``RunDirBusy``. A
        directory this created that holds nothing but the lock afterwards (the command failed before any
        write, e.g. an unreachable Ray cluster) is removed again: a failed start leaves no ``--out``. Only
        the holder removes it: a run refused because another holds the directory leaves it alone."""
        created = not self.root.exists()
        self.create()
        held = False
        try:
            with hold(self.root):
                held = True
                yield
        finally:
            if held and created and [p.name for p in self.root.iterdir()] == [LOCK]:
                with contextlib.suppress(OSError):
                    (self.root / LOCK).unlink()
                    self.root.rmdir()

    @contextmanager
    def temp_dir(self, purpose: str = "probe") -> Iterator[Path]:
        """A private folder inside the run directory for large temporaries, removed afterwards."""
        import tempfile

        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{purpose}{TMP_MARK}", dir=self.root))
        except OSError as e:
            if is_disk_error(e):
                raise write_error(e, self.root) from None
            raise
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def remove_temps(self) -> list[Path]:
        """Remove what interrupted writes and stages left behind (recognisable temp names), in the run
        directory itself and in the folders its stages own (never elsewhere: ``--out`` may hold other things)."""
        found = sorted({*self.root.glob(f".*{TMP_MARK}*"), *self._nested_temps()})
        for p in found:
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        return found

    def _nested_temps(self) -> set[Path]:
        """Temp files anywhere inside the folders the stages own (e.g. ``zeroshot/<model>/``)."""
        out = set()
        for names in STAGE_FILES.values():
            for name in names:
                if self.path(name).is_dir():
                    out |= {p for p in self.path(name).rglob(f".*{TMP_MARK}*")}
        return out

    # -- results ---------------------------------------------------------------------------------

    def read_results(self) -> pd.DataFrame:
        path = self.path(RESULTS)
        if not path.is_file():
            return coerce_results(pd.DataFrame(columns=RESULT_COLUMNS))
        return read_results(path)

    def replace_rows(self, stage: str, rows: pd.DataFrame) -> pd.DataFrame:
        """results.csv with every row of ``stage`` (probe or zeroshot) replaced by ``rows``; returns it."""
        if stage not in ROW_STAGES:
            raise ValueError(f"stage {stage!r} owns no rows of results.csv")
        old = self.read_results()
        keep = old[~is_zeroshot(old["probe"])] if stage == "zeroshot" else old[is_zeroshot(old["probe"])]
        frames = [f for f in (keep, coerce_results(rows)) if len(f)]
        merged = sort_results(pd.concat(frames, ignore_index=True) if frames else coerce_results(rows))
        check_unique(merged, str(self.path(RESULTS)))
        self.write_csv(RESULTS, merged)
        return merged

    # -- manifest --------------------------------------------------------------------------------

    def read_json(self, rel: str) -> dict:
        """A JSON object of the run; ``{}`` when the file is absent, an error when it is unreadable."""
        path = self.path(rel)
        if not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise SpeechprobeError(f"{path}: cannot be read ({e}); rerun with --overwrite") from None
        if not isinstance(data, dict):
            raise SpeechprobeError(f"{path}: not a JSON object; rerun with --overwrite")
        return data

    def read_manifest(self) -> dict:
        return self.read_json(MANIFEST)

    def update_manifest(self, sections: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> dict:
        """Replace the top-level ``sections`` of manifest.json (others stay); set ``defaults`` where absent."""
        manifest = self.read_manifest()
        manifest.update(sections)
        for key, value in (defaults or {}).items():
            manifest.setdefault(key, value)
        self.write_json(MANIFEST, manifest)
        return manifest

    # -- stages ----------------------------------------------------------------------------------

    def stages(self) -> dict[str, dict]:
        return self.read_json(RUN_FILE).get("stages", {})

    def has_rows(self, stage: str) -> bool:
        """Whether results.csv holds rows of ``stage`` (probe or zeroshot)."""
        if not self.path(RESULTS).is_file():
            return False
        zs = is_zeroshot(self.read_results()["probe"])
        return bool(zs.any() if stage == "zeroshot" else (~zs).any())

    def has_output(self, stage: str) -> bool:
        """Whether ``stage`` has written anything yet (a claim binds only then)."""
        for name in EVIDENCE[stage]:
            target = self.path(name)
            if target.is_file() or (target.is_dir() and any(target.iterdir())):
                return True
        return stage in ROW_STAGES and self.has_rows(stage)

    def claim(self, stage: str, config: Mapping[str, Any], mode: str = "auto") -> str:
        """Start (or resume) ``stage`` with ``config``; returns ``"new"``, ``"resumed"`` or ``"overwritten"``.

        ``mode``: ``auto`` resumes the same settings and refuses others; ``resume`` also adopts files of
        a run without ``run.json``; ``overwrite`` removes the stage's files (and those built on them)
        first. A stage that has written nothing yet binds nothing. A refusal is a
        :class:`~speechprobe.errors.ConfigError` naming the directory, what differs and the flags.
        """
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}; one of {', '.join(MODES)}")
        with self.lock():
            return self._claim(stage, config, mode)

    def _claim(self, stage: str, config: Mapping[str, Any], mode: str) -> str:
        """:meth:`claim` with the directory held."""
        config = json.loads(json.dumps(config, sort_keys=True, default=str))
        recorded = self.stages()
        stages = {k: v for k, v in recorded.items() if self.has_output(k)}
        outcome = "new"
        if not recorded and self._legacy_files():
            if mode == "auto":
                raise ConfigError(
                    f"{self.root} holds files of an earlier run whose settings are unknown; pass --resume to "
                    "continue it with these settings, --overwrite to start again, or another --out"
                )
            if mode == "overwrite":
                self._remove(STAGES)
                outcome = "overwritten"
        mine = stages.get(stage)
        if mine is not None and (mode == "overwrite" or mine.get("fingerprint") != fingerprint(config)):
            if mode != "overwrite":
                raise ConfigError(
                    f"{self.root} holds a run with other {stage} settings ({_diff(mine.get('config', {}), config)}); "
                    "pass --overwrite to replace it or another --out (--resume continues only the same settings)"
                )
            stages = self._clean(stage, stages)
            outcome = "overwritten"
        elif mine is not None:
            outcome = "resumed"
        others = {k: v for k, v in stages.items() if k != stage and k in DATA_STAGES}
        conflict = _data_conflict(config, others) if stage in DATA_STAGES else ""
        if conflict:
            if mode != "overwrite":
                raise ConfigError(
                    f"{self.root} holds a run over other data ({conflict}); "
                    "pass --overwrite to replace it, or another --out"
                )
            self._remove(STAGES)
            stages, outcome = {}, "overwritten"
        self.remove_temps()
        stages[stage] = {"fingerprint": fingerprint(config), "config": config}
        self.write_json(RUN_FILE, {"stages": stages})
        return outcome

    def _legacy_files(self) -> list[str]:
        known = [RESULTS, MANIFEST, *(f for names in STAGE_FILES.values() for f in names)]
        return [f for f in known if self.path(f).exists()]

    def _clean(self, stage: str, stages: dict[str, dict]) -> dict[str, dict]:
        """Remove ``stage`` and the stages built on it; returns the stages left."""
        gone = [stage, *DOWNSTREAM.get(stage, ())]
        self._remove(gone)
        return {k: v for k, v in stages.items() if k not in gone}

    def _remove(self, stages) -> None:
        for stage in stages:
            for name in STAGE_FILES.get(stage, ()):
                target = self.path(name)
                shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
        for name in REPORT_FILES:
            self.path(name).unlink(missing_ok=True)
        owners = [s for s in stages if s in ROW_STAGES]
        if owners and self.path(RESULTS).is_file():
            old = self.read_results()
            zs = is_zeroshot(old["probe"])
            drop = pd.Series(False, index=old.index)
            if "probe" in owners:
                drop |= ~zs
            if "zeroshot" in owners:
                drop |= zs
            keep = old[~drop]
            if len(keep):
                self.write_csv(RESULTS, sort_results(keep))
            else:
                self.path(RESULTS).unlink()
        if "probe" in stages or "extract" in stages:
            manifest = self.read_manifest()
            if manifest:
                kept = {k: v for k, v in manifest.items() if k == "zeroshot" and "zeroshot" not in stages}
                self.write_json(MANIFEST, kept) if kept else self.path(MANIFEST).unlink()
        elif "zeroshot" in stages and self.path(MANIFEST).is_file():
            manifest = self.read_manifest()
            manifest.pop("zeroshot", None)
            gone = set(STAGE_FILES["zeroshot"])
            manifest["figures"] = [f for f in manifest.get("figures", []) if f not in gone]
            self.write_json(MANIFEST, manifest)


def _diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """``key: old → new`` for the settings that differ (at most four named)."""
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    parts = [f"{k}: {_short(old.get(k))} → {_short(new.get(k))}" for k in keys[:4]]
    return ", ".join(parts) + (f" and {len(keys) - 4} more" if len(keys) > 4 else "") or "unknown"


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _data_conflict(config: Mapping[str, Any], others: Mapping[str, dict]) -> str:
    """The shared data settings on which ``config`` and another stage disagree ("" when none)."""
    for stage, info in others.items():
        theirs = info.get("config", {})
        diff = {
            k: (theirs[k], config[k])
            for k in SHARED_DATA_KEYS
            if k in theirs and k in config and theirs[k] != config[k]
        }
        if diff:
            return f"its {stage} stage used " + ", ".join(f"{k} {a}, this {b}" for k, (a, b) in diff.items())
    return ""
