"""HF dataset source: one loader for hub ids, the HF cache, ``save_to_disk`` folders and parquet folders.

``HFSource`` reads any Hugging Face audio dataset given its column names (the Dynamic-SUPERB
layout by default: ``file``, ``audio``, ``instruction``, ``label``):

* a hub id (``DynamicSuperb/StressDetection_MIRSD``): ``datasets.load_dataset``, which also finds
  a copy in the HF cache when offline (``HF_HUB_OFFLINE=1``); ``streaming=True`` reads it without
  a local copy;
* a ``save_to_disk`` folder (``datasets.load_from_disk``, memory-mapped);
* a folder of parquet (or arrow) files, e.g. a hub snapshot (``data/test-00000-of-00001.parquet``),
  read lazily with the ``parquet`` builder in streaming mode (no copy into the cache); the split
  of each file comes from its path (``test``, ``train``, ``validation``/``dev``; else ``train``).

Rows are iterated one at a time and audio is decoded only when a clip is built, by speechprobe
itself (libsndfile, librosa fallback), never by ``datasets`` (so no torchcodec is needed). The audio
column may hold encoded files (``{"bytes", "path"}``, the hub layout), arrays
(``{"array", "sampling_rate"}``) or file paths (strings, relative to the dataset folder).

Labels are normalised (case, whitespace), mapped through ``label_map`` and, when a label set is
given, validated: a row whose label is outside it is skipped with a reason naming the row (it is
counted in ``skipped`` and so in manifest.json; ``outside_label_set`` counts the spellings).
Undecodable audio is skipped the same way. An empty split, a missing split or column, and an
unreachable hub id are errors (``SpeechprobeError``) that say what to do.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AudioError, SpeechprobeError
from .audio import MAX_CLIP_SECONDS, Decoded, decode_bytes, from_array, read, validate
from .clip import Clip, audio_hash
from .hf_layout import DATA_SUFFIXES, data_files, empty_saved_splits, is_saved, split_of
from .revision import hub_revision, local_revision
from .source import LoggedSource, SkipLog, normalise_label, sha256_lines

log = logging.getLogger("speechprobe")

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Columns:
    """Column names of a dataset. ``audio`` and ``label`` are required; ``id`` and ``instruction``
    are used when present; ``group`` (a speaker/session column) must exist when given, unless
    ``group_optional`` (then a copy without it has no groups, and ``group_missing`` says so).
    ``group_pattern`` extracts a group from the group column, or, without one, from the id (or audio
    path): its first capture group, else the whole match."""

    audio: str = "audio"
    label: str = "label"
    id: str | None = "file"
    instruction: str | None = "instruction"
    group: str | None = None
    group_pattern: str | None = None
    group_optional: bool = False


def is_hub_id(spec: str) -> bool:
    """``owner/name`` that is not an existing local path."""
    return bool(HUB_ID.match(spec)) and not Path(spec).expanduser().exists()


def local_copy_hint(hub_id: str, split: str | None = None, name: str | None = None) -> str:
    """How to make and use a local copy of a hub dataset."""
    target = f"{name}=DIR" if name else "DIR"
    return (
        f"to work offline, make a local copy on a machine with network access, either "
        f"`python -c \"import datasets; datasets.load_dataset('{hub_id}', split='{split or 'test'}')"
        f".save_to_disk('DIR')\"` "
        f"or `huggingface-cli download {hub_id} --repo-type dataset --local-dir DIR` (parquet files), "
        f"then pass --tasks {target}; a copy already in the HF cache is used when HF_HUB_OFFLINE=1 is set"
    )


class HFSource(LoggedSource):
    """Clips from a Hugging Face dataset (hub id, HF cache, ``save_to_disk`` folder or parquet folder).

    Implements the ``ClipSource`` protocol; ``labels()`` reads only the label column.
    """

    def __init__(
        self,
        source: str | os.PathLike,
        task: str | None = None,
        *,
        split: str | None = None,
        columns: Columns | None = None,
        label_set: Sequence[str] = (),
        label_map: Mapping[str, str] | None = None,
        streaming: bool = False,
        revision: str | None = None,
        name: str | None = None,
        max_seconds: float | None = MAX_CLIP_SECONDS,
    ) -> None:
        self.source = str(source)
        self.max_seconds = max_seconds
        self.columns = columns or Columns()
        self.label_set = tuple(label_set)
        self.label_map = {normalise_label(k): v for k, v in (label_map or {}).items()}
        self.streaming = streaming
        self.revision = revision
        self._pattern = re.compile(self.columns.group_pattern) if self.columns.group_pattern else None
        self._registry_name = name
        self.group_missing = ""
        self.base: Path | None = None
        self._data_files: list[Path] = []
        self.kind, ds, splits = self._open(split)
        self.split = self._choose_split(split, splits)
        ds = ds[self.split] if isinstance(ds, Mapping) else ds
        self._ds = _without_decoding(ds)
        self.task = task or self._default_name()
        self._log = SkipLog(self.task)
        self.outside_label_set: Counter[str] = Counter()
        self.group_unmatched = 0
        self._warned_groups = False
        self.column_names = self._columns_of(self._ds)
        self._check_columns()
        self._label_feature = (self._ds.features or {}).get(self.columns.label) if self._ds.features else None
        if self.num_rows == 0 or (
            self.num_rows is None and _first(self._ds.select_columns([self.columns.label])) is None
        ):
            what = f"split {self.split!r}" if self.split else "the dataset"
            raise SpeechprobeError(f"{self.source}: {what} is empty (no rows)")

    # -- opening -------------------------------------------------------------------------------

    def _open(self, split: str | None):
        """(kind, dataset or {split: dataset}, split names)."""
        path = Path(self.source).expanduser()
        if path.exists():
            return self._open_local(path)
        if not HUB_ID.match(self.source):
            raise SpeechprobeError(
                f"{self.source}: no such file or folder, and not a hub id (owner/name); pass a manifest .csv, "
                f"a `save_to_disk` folder, a folder of parquet files or a hub id"
            )
        return self._open_hub(split)

    def _open_local(self, path: Path):
        import datasets

        self.base = path if path.is_dir() else path.parent
        if path.is_dir() and is_saved(path):
            try:
                ds = datasets.load_from_disk(str(path))
            except Exception as e:
                empty = empty_saved_splits(path)
                if empty:  # datasets cannot load a saved dataset with no rows (no shards)
                    what = f"split {', '.join(empty)}" if empty != [""] else "the saved dataset"
                    raise SpeechprobeError(f"{path}: {what} is empty (no rows)") from None
                raise SpeechprobeError(f"{path}: not a readable `save_to_disk` folder ({_reason(e)})") from None
            self._data_files = sorted(p for p in path.rglob("*") if p.is_file())
            splits = list(ds) if isinstance(ds, Mapping) else [None]
            return "save_to_disk", ds, splits
        files = [path] if path.is_file() and path.suffix in DATA_SUFFIXES else data_files(path) if path.is_dir() else []
        if not files:
            raise SpeechprobeError(
                f"{path}: not a dataset: expected a `save_to_disk` folder (state.json or dataset_dict.json), "
                f"a folder of .parquet/.arrow files, or a manifest .csv"
            )
        self._data_files = files
        by_split: dict[str, list[str]] = {}
        for f in files:
            by_split.setdefault(split_of(f.relative_to(self.base)), []).append(str(f))
        builder = "parquet" if files[0].suffix == ".parquet" else "arrow"
        try:
            ds = datasets.load_dataset(builder, data_files=by_split, streaming=True)
        except Exception as e:
            raise SpeechprobeError(f"{path}: cannot read its {builder} files ({_reason(e)})") from None
        return builder, ds, list(by_split)

    def _open_hub(self, split: str | None):
        import datasets

        try:
            builder = datasets.load_dataset_builder(self.source, revision=self.revision)
            splits = list(builder.info.splits or {}) or list(builder.config.data_files or {})
            chosen = self._choose_split(split, splits) if splits else (split or "test")
            ds = datasets.load_dataset(self.source, split=chosen, streaming=self.streaming, revision=self.revision)
        except SpeechprobeError:
            raise
        except Exception as e:
            raise SpeechprobeError(
                f"cannot load {self.source} from the Hugging Face hub ({_reason(e)}); "
                + local_copy_hint(self.source, split, self._registry_name)
            ) from None
        self._hub_files = sorted(str(f) for files in (builder.config.data_files or {}).values() for f in files)
        self._hub_commit = getattr(builder, "hash", None)  # the repository's commit (or the cached one offline)
        return "hub", {chosen: ds}, [chosen]

    def _choose_split(self, split: str | None, splits: list) -> str | None:
        if splits == [None]:  # a single saved Dataset: no split names
            return split
        if split is not None:
            if split not in splits:
                raise SpeechprobeError(
                    f"{self.source}: no split {split!r}; it has {', '.join(map(str, splits))} (pass --split)"
                )
            return split
        if "test" in splits:
            return "test"
        if len(splits) == 1:
            return splits[0]
        raise SpeechprobeError(f"{self.source}: several splits ({', '.join(splits)}) and no 'test'; pass --split")

    def _default_name(self) -> str:
        return Path(self.source.rstrip("/")).name or self.source

    @staticmethod
    def _columns_of(ds) -> list[str]:
        names = ds.column_names
        if names is None:  # a stream without declared features: look at the first row
            row = _first(ds)
            names = list(row) if row else []
        return list(names)

    def _check_columns(self) -> None:
        c = self.columns
        if c.group and c.group_optional and c.group not in self.column_names:
            self.group_missing = f"this copy has no column {c.group!r}: its clips have no group"
            log.warning("task %s: %s; folds are not grouped", self.task, self.group_missing)
            self.columns = c = dataclasses.replace(c, group=None, group_pattern=None)
            self._pattern = None
        need = [x for x in (c.audio, c.label, c.group) if x]
        missing = [x for x in need if x not in self.column_names]
        if missing:
            raise SpeechprobeError(
                f"{self.source}: missing column(s) {', '.join(missing)} "
                f"(available: {', '.join(self.column_names) or 'none'}); "
                f"name the right ones with --audio-column / --label-column / --group-column"
            )

    # -- protocol ------------------------------------------------------------------------------

    @property
    def num_rows(self) -> int | None:
        """Rows in the split (None for a stream of unknown length)."""
        try:
            return len(self._ds)
        except TypeError:
            info = getattr(self._ds, "info", None)
            split_info = (info.splits or {}).get(self.split) if info is not None and info.splits else None
            return split_info.num_examples if split_info and split_info.num_examples else None

    @property
    def has_groups(self) -> bool:
        """Whether clips get a group (a group column or a group pattern)."""
        return bool(self.columns.group or self._pattern)

    def labels(self) -> list[str]:
        """Canonical labels of the rows that will be used (outside-set and empty labels left out);
        reads the label column only, no audio."""
        out = []
        for row in self._ds.select_columns([self.columns.label]):
            label, problem = self._label(row[self.columns.label])
            if problem is None:
                out.append(label)
        return out

    def label_survey(self) -> tuple[Counter[str], int]:
        """(labels outside the label set by spelling, rows with a label): the pre-extraction check
        (``data/labels.py``), reading the label column only."""
        outside: Counter[str] = Counter()
        total = 0
        for row in self._ds.select_columns([self.columns.label]):
            label, problem = self._label(row[self.columns.label])
            if label:
                total += 1
                outside[label] += problem is not None
        return +outside, total

    def groups(self) -> list[str | None] | None:
        """The group of every row ``labels()`` keeps (None where the pattern does not match), reading the
        label and group (or id) columns only; None when the source has no groups."""
        if not self.has_groups:
            return None
        c = self.columns
        has_id = bool(c.id and c.id in self.column_names)
        wanted = [c.label, c.group or (c.id if has_id else c.audio), *([c.id] if has_id else [])]
        out = []
        for row in self._ds.select_columns(list(dict.fromkeys(wanted))):
            if self._label(row[c.label])[1] is None:
                file_id = row.get(c.id) if c.id else None
                out.append(self._group_key(row, str(file_id) if file_id not in (None, "") else None))
        return out

    def __iter__(self) -> Iterator[Clip]:
        self._log.clear()
        self.outside_label_set.clear()
        self.group_unmatched = 0
        c = self.columns
        used = {c.audio, c.label, c.group, c.id, c.instruction}
        seen_ids: set[str] = set()
        for i, row in enumerate(self._ds):
            file_id = row.get(c.id) if c.id else None
            file_id = str(file_id) if file_id not in (None, "") else None
            where = f"{self.task} row {i}" + (f" ({file_id})" if file_id else "")
            raw = row.get(c.label)
            label, problem = self._label(raw)
            if problem is not None:
                outside = bool(self.label_set and label and label not in self.label_set)
                if outside:
                    self.outside_label_set[label] += 1
                self._log.add(where, problem, "label_outside_set" if outside else "empty_label")
                continue
            try:
                decoded = self._decode(row.get(c.audio), where)
            except AudioError as e:
                reason = str(e)
                self._log.add(where, reason[len(where) + 2 :] if reason.startswith(where + ": ") else reason)
                continue
            for reason, kind in decoded.notes(self.max_seconds):
                self._log.note(where, reason, kind)
            audio, sr = decoded.audio, decoded.sample_rate
            h = audio_hash(audio, sr)
            clip_id = file_id or h[:16]
            if clip_id in seen_ids:
                clip_id = f"{clip_id}#{i}"
            seen_ids.add(clip_id)
            instruction = row.get(c.instruction) if c.instruction else None
            meta: dict[str, Any] = {k: v for k, v in row.items() if k not in used and isinstance(v, _SCALARS)}
            meta["label_original"] = self._original(raw)
            meta["row"] = i
            meta["native"] = decoded.native
            yield Clip(
                id=clip_id,
                audio=audio,
                sample_rate=sr,
                label=label,
                group=self._group(row, file_id),
                instruction=str(instruction) if instruction not in (None, "") else None,
                meta=meta,
                _hash=h,
            )
        if self.group_unmatched and not self._warned_groups:  # sources are read once per model: warn once
            self._warned_groups = True
            log.warning(
                "task %s: %d row(s) have no group: the pattern %r did not match their id",
                self.task,
                self.group_unmatched,
                c.group_pattern,
            )

    def fingerprint(self) -> str:
        """Hash of where the data comes from (files and sizes, or the dataset's own fingerprint),
        the column and label settings, and every row's label."""
        lines = [
            "speechprobe.hf/1",
            self.kind,
            str(self.split),
            repr(dataclasses.astuple(self.columns)),
            repr(sorted(self.label_map.items())),
            repr(self.label_set),
        ]
        if self.kind == "hub":
            lines += [self.source, str(self.revision), getattr(self._ds, "_fingerprint", "") or ""]
            lines += getattr(self, "_hub_files", [])
        for f in self._data_files:
            try:
                lines.append(f"{f.relative_to(self.base).as_posix()}\t{f.stat().st_size}")
            except (OSError, ValueError):
                lines.append(f"{f}\tmissing")
        lines += [self._original(row[self.columns.label]) for row in self._ds.select_columns([self.columns.label])]
        return sha256_lines(lines)

    def revision_info(self) -> dict:
        """What was read, for manifest.json (``data/revision.py``): the hub commit, or a local copy's
        commit where knowable and its content hash; a pinned commit that was not read is an error."""
        if self.kind == "hub":
            return hub_revision(self.source, self.revision, getattr(self, "_hub_commit", None))
        return local_revision(self.base, self._data_files, self.revision)

    # -- rows ----------------------------------------------------------------------------------

    def _original(self, raw: object) -> str:
        """The label as the dataset spells it (class names for ClassLabel columns)."""
        names = getattr(self._label_feature, "names", None)
        if names is not None and isinstance(raw, (int, np.integer)) and 0 <= int(raw) < len(names):
            return str(names[int(raw)])
        return "" if raw is None else str(raw)

    def _label(self, raw: object) -> tuple[str, str | None]:
        """(canonical label, None) or (spelling, reason to skip the row)."""
        label = normalise_label(self._original(raw))
        if not label:
            return label, "empty label"
        label = self.label_map.get(label, label)
        if self.label_set and label not in self.label_set:
            return label, (
                f"label {self._original(raw)!r} is outside the label set of {self.task} "
                f"({', '.join(self.label_set)}); add it to the task's label_map or fix the row"
            )
        return label, None

    def _group(self, row: Mapping[str, Any], file_id: str | None) -> str | None:
        group = self._group_key(row, file_id)
        if group is None and self._pattern is not None:
            self.group_unmatched += 1  # folded as a group of its own (probes.cv.normalise_groups)
        return group

    def _group_key(self, row: Mapping[str, Any], file_id: str | None) -> str | None:
        c = self.columns
        if c.group:
            value = row.get(c.group)
            if value in (None, "") or self._pattern is None:
                return None if value in (None, "") else str(value)
            text = str(value)
        elif self._pattern is None:
            return None
        else:
            text = file_id or _audio_path(row.get(c.audio)) or ""
        m = self._pattern.search(text)
        if not m:
            return None
        return m.group(1) if m.groups() else m.group(0)

    def _decode(self, value: Any, where: str) -> Decoded:
        """Decode one audio cell (arrays, encoded bytes, or a file path), up to ``max_seconds``."""
        if value is None:
            raise AudioError(f"{where}: no audio (empty cell)")
        if isinstance(value, Mapping) and value.get("array") is not None:
            decoded = from_array(value, where, self.max_seconds)
        elif isinstance(value, Mapping) and value.get("bytes"):
            decoded = decode_bytes(value["bytes"], where, hint=value.get("path"), max_seconds=self.max_seconds)
        elif isinstance(value, (bytes, bytearray)):
            decoded = decode_bytes(bytes(value), where, max_seconds=self.max_seconds)
        elif isinstance(value, (str, os.PathLike)) or (isinstance(value, Mapping) and value.get("path")):
            rel = value["path"] if isinstance(value, Mapping) else value
            try:
                decoded = read(self._resolve(rel), self.max_seconds)
            except AudioError as e:
                raise AudioError(f"{where}: {e}") from None
        else:
            raise AudioError(f"{where}: unsupported audio cell ({type(value).__name__})")
        validate(decoded.audio, where)
        return decoded

    def _resolve(self, rel: str | os.PathLike) -> Path:
        p = Path(rel).expanduser()
        if p.is_absolute() or self.base is None:
            return p
        return self.base / p


def _without_decoding(ds):
    """Cast every decodable feature (Audio, Image, ...) to ``decode=False``: speechprobe decodes audio."""
    features = getattr(ds, "features", None) or {}
    for name, feature in features.items():
        if getattr(feature, "decode", False) and dataclasses.is_dataclass(feature):
            ds = ds.cast_column(name, dataclasses.replace(feature, decode=False))
    return ds


def _first(ds) -> dict | None:
    for row in ds:
        return row
    return None


def _audio_path(value: Any) -> str | None:
    if isinstance(value, Mapping):
        return value.get("path")
    return str(value) if isinstance(value, (str, os.PathLike)) else None


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
