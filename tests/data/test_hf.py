"""HF dataset source: the Dynamic-SUPERB layout from save_to_disk and parquet copies gives the same
clips as a manifest of the same files; labels, grouping and bad input. No network."""

from __future__ import annotations

import csv
import io
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechprobe.data.hf import Columns, HFSource
from speechprobe.data.manifest import ManifestSource
from speechprobe.data.registry import registered_tasks
from speechprobe.data.resolve import open_task
from speechprobe.errors import SpeechprobeError

DISTANCE = registered_tasks()["ds-distance"]
INSTRUCTION = "How far is the speaker from the microphone? The answer could be 0.4m, 2.0m, or 4.0m."
DS_SPELLINGS = {
    "0.4m": ["0.4m", "0.4 m", "0.4M"],
    "2.0m": ["2.0m", "2m", " 2.0 M "],
    "4.0m": ["4.0m", "4m", "4.0 meters"],
}
LEVELS = {"0.4m": 0.5, "2.0m": 0.2, "4.0m": 0.08}
VARIANTS = ("bytes", "arrays", "paths", "audio-paths")


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path_factory):
    """Force offline mode even if datasets/huggingface_hub were imported before HF_HUB_OFFLINE was set,
    and keep the datasets cache out of the user's home."""
    import datasets
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path_factory.mktemp("hf-datasets-cache"))


def _rows(root: Path) -> list[dict]:
    """Audio files in the Dynamic-SUPERB distance layout and a manifest CSV of the same files."""
    rng = np.random.default_rng(0)
    (root / "wav").mkdir(parents=True)
    rows, manifest = [], []
    for li, (label, spellings) in enumerate(DS_SPELLINGS.items()):
        for i, spelling in enumerate(spellings):
            speaker = f"3D_SPK_{i:05d}"
            name = f"wav/{speaker}_{li:03d}_Device02_Distance{li:02d}.wav"
            sr = (16000, 8000, 22050)[i]
            y = (
                LEVELS[label] * np.sin(2 * np.pi * 220 * np.arange(int(0.3 * sr)) / sr)
                + 0.01 * rng.standard_normal(int(0.3 * sr))
            ).astype(np.float32)
            sf.write(root / name, y, sr)
            rows.append({"file": name, "instruction": INSTRUCTION, "label": spelling, "word": f"w{li}{i}"})
            manifest.append((name, label, speaker))
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "group"])
        w.writerows(manifest)
    return rows


def _audio_cells(root: Path, rows: list[dict], variant: str) -> list:
    cells = []
    for r in rows:
        path = root / r["file"]
        if variant == "bytes":  # the hub layout: encoded files in the Audio feature
            cells.append({"bytes": path.read_bytes(), "path": Path(r["file"]).name})
        elif variant == "arrays":
            y, sr = sf.read(path, dtype="float32")
            cells.append({"array": y.tolist(), "sampling_rate": sr})
        elif variant == "paths":  # plain strings, relative to the dataset folder
            cells.append(r["file"])
        else:  # Audio feature holding paths only
            cells.append({"bytes": None, "path": r["file"]})
    return cells


def _dataset(rows: list[dict], cells: list, variant: str):
    from datasets import Audio, Dataset

    ds = Dataset.from_list(
        [
            {"file": r["file"], "audio": a, "instruction": r["instruction"], "label": r["label"], "word": r["word"]}
            for r, a in zip(rows, cells)
        ]
    )
    return ds.cast_column("audio", Audio()) if variant in ("bytes", "audio-paths") else ds


def _save(ds, out: Path, kind: str, root: Path | None = None) -> Path:
    if kind == "save_to_disk":
        ds.save_to_disk(str(out))
    else:
        (out / "data").mkdir(parents=True)
        ds.to_parquet(str(out / "data" / "test-00000-of-00001.parquet"))
    if root is not None:  # path variants: the audio files live in the dataset folder
        shutil.copytree(root / "wav", out / "wav")
    return out


@pytest.fixture(scope="module")
def ds_copies(tmp_path_factory):
    """{(variant, kind): folder} for every audio layout, saved with save_to_disk and as parquet."""
    import datasets

    base = tmp_path_factory.mktemp("ds-layout")
    root = base / "files"
    rows = _rows(root)
    out = {"root": root, "rows": rows}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(datasets.config, "HF_DATASETS_CACHE", base / "cache")
        mp.chdir(root)  # datasets stats relative Audio paths from the working directory when saving
        for variant in VARIANTS:
            ds = _dataset(rows, _audio_cells(root, rows, variant), variant)
            for kind in ("save_to_disk", "parquet"):
                with_files = root if variant in ("paths", "audio-paths") else None
                out[variant, kind] = _save(ds, base / f"{variant}-{kind}", kind, with_files)
    return out


def _summary(clips):
    return [(c.id, c.label, c.group, c.sample_rate, c.content_hash) for c in clips]


@pytest.mark.parametrize("kind", ["save_to_disk", "parquet"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_dynamic_superb_layout_matches_manifest(ds_copies, variant, kind):
    expected = _summary(ManifestSource(ds_copies["root"] / "manifest.csv"))
    task, source = open_task(f"ds-distance={ds_copies[variant, kind]}", Path("unused"))
    assert task.name == "ds-distance" and task.source == str(ds_copies[variant, kind])
    clips = list(source)
    assert _summary(clips) == expected
    assert not source.skipped
    assert all(c.instruction == INSTRUCTION for c in clips)
    by_id = {r["file"]: r for r in ds_copies["rows"]}
    for c in clips:  # DS spelling kept; extras in meta
        assert c.meta["label_original"] == by_id[c.id]["label"]
        assert c.meta["word"] == by_id[c.id]["word"]
    assert source.labels() == [c.label for c in clips]
    assert len({c.group for c in clips}) == 3  # speaker from the file name: grouped folds


def test_labels_do_not_decode_audio(ds_copies, monkeypatch):
    source = HFSource(ds_copies["bytes", "parquet"], label_set=DISTANCE.labels, label_map=DISTANCE.label_map)

    def boom(*a, **k):
        raise AssertionError("labels() decoded audio")

    monkeypatch.setattr(HFSource, "_decode", boom)
    monkeypatch.setattr("speechprobe.data.hf.decode_bytes", boom)
    assert sorted(set(source.labels())) == ["0.4m", "2.0m", "4.0m"]


def test_fingerprint_stable_and_content_sensitive(ds_copies, tmp_path):
    for kind in ("save_to_disk", "parquet"):
        a = HFSource(ds_copies["bytes", kind]).fingerprint()
        assert a == HFSource(ds_copies["bytes", kind]).fingerprint() and len(a) == 64
    rows = [dict(r) for r in ds_copies["rows"]]
    rows[0]["label"] = "4m"
    changed = _save(_dataset(rows, _audio_cells(ds_copies["root"], rows, "bytes"), "bytes"), tmp_path / "c", "parquet")
    assert HFSource(changed).fingerprint() != HFSource(ds_copies["bytes", "parquet"]).fingerprint()


def test_label_outside_set_and_undecodable_rows_are_skipped(ds_copies, tmp_path):
    rows = [dict(r) for r in ds_copies["rows"]]
    cells = _audio_cells(ds_copies["root"], rows, "bytes")
    rows[1]["label"] = "10m"  # outside the label set
    cells[4] = {"bytes": b"RIFF not really a wav file", "path": "broken.wav"}  # undecodable
    rows[6]["label"] = "  "  # empty
    folder = _save(_dataset(rows, cells, "bytes"), tmp_path / "bad", "parquet")
    _, source = open_task(f"ds-distance={folder}", tmp_path)
    clips = list(source)
    assert len(clips) == len(rows) - 3
    reasons = {s.item: s.reason for s in source.skipped}
    assert set(reasons) == {f"ds-distance row {i} ({rows[i]['file']})" for i in (1, 4, 6)}
    assert "'10m' is outside the label set of ds-distance" in reasons[f"ds-distance row 1 ({rows[1]['file']})"]
    assert reasons[f"ds-distance row 4 ({rows[4]['file']})"] == "not decodable as audio (Format not recognised)"
    assert reasons[f"ds-distance row 6 ({rows[6]['file']})"] == "empty label"
    assert source.outside_label_set == {"10m": 1}
    assert len(source.labels()) == len(clips) + 1  # the pre-check drops label problems, not audio ones
    assert source.outside_label_set == {"10m": 1}
    assert len(list(source)) == len(clips) and len(source.skipped) == 3  # re-iterating resets the log


def test_missing_columns_name_them_and_list_the_rest(ds_copies):
    with pytest.raises(
        SpeechprobeError,
        match=r"missing column\(s\) speech, speaker \(available: file, audio, "
        r"instruction, label, word\)",
    ):
        HFSource(ds_copies["bytes", "save_to_disk"], columns=Columns(audio="speech", group="speaker"))
    with pytest.raises(SpeechprobeError, match="missing column"):
        open_task(str(ds_copies["bytes", "parquet"]), Path("unused"), columns={"label": "emotion"})


def test_empty_split_is_an_error(tmp_path):
    from datasets import Audio, Dataset, Features, Value

    features = Features({"file": Value("string"), "audio": Audio(), "label": Value("string")})
    empty = Dataset.from_dict({"file": [], "audio": [], "label": []}, features=features)
    for kind in ("save_to_disk", "parquet"):
        folder = _save(empty, tmp_path / kind, kind)
        with pytest.raises(SpeechprobeError, match=r"(the saved dataset|split 'test') is empty \(no rows\)"):
            HFSource(folder)


def test_split_choice(ds_copies, tmp_path):
    from datasets import DatasetDict, load_from_disk

    ds = load_from_disk(str(ds_copies["bytes", "save_to_disk"]))
    DatasetDict({"train": ds.select(range(3)), "test": ds}).save_to_disk(str(tmp_path / "dd"))
    assert HFSource(tmp_path / "dd").split == "test" and HFSource(tmp_path / "dd").num_rows == len(ds)
    assert HFSource(tmp_path / "dd", split="train").num_rows == 3
    with pytest.raises(SpeechprobeError, match="no split 'dev'; it has train, test"):
        HFSource(tmp_path / "dd", split="dev")
    (tmp_path / "pq" / "data").mkdir(parents=True)
    ds.to_parquet(str(tmp_path / "pq" / "data" / "train-00000-of-00001.parquet"))
    ds.select(range(2)).to_parquet(str(tmp_path / "pq" / "data" / "validation-00000-of-00001.parquet"))
    with pytest.raises(SpeechprobeError, match="several splits .* pass --split"):
        HFSource(tmp_path / "pq")
    assert HFSource(tmp_path / "pq", split="validation").labels() == [
        r["label"].strip().lower() for r in ds_copies["rows"][:2]
    ]


def test_offline_hub_id_says_how_to_use_a_local_copy(tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(SpeechprobeError) as e:
        open_task("ds-stress", tmp_path)
    msg = str(e.value)
    assert "DynamicSuperb/StressDetection_MIRSD" in msg and "save_to_disk" in msg
    assert "--tasks ds-stress=DIR" in msg and "huggingface-cli download" in msg
    with pytest.raises(SpeechprobeError, match="cannot load someone/some_dataset from the Hugging Face hub"):
        open_task("someone/some_dataset", tmp_path)
    assert time.perf_counter() - t0 < 30  # offline fails fast, no network wait


def test_any_audio_dataset_with_column_overrides(tmp_path):
    from datasets import ClassLabel, Dataset, Features, Value

    rng = np.random.default_rng(1)
    cells, emotions, speakers = [], [], []
    for i in range(6):
        buf = io.BytesIO()
        sf.write(buf, (0.1 * rng.standard_normal(1600)).astype(np.float32), 16000, format="FLAC")
        cells.append({"bytes": buf.getvalue(), "path": None})
        emotions.append(i % 2)
        speakers.append(f"spk{i // 2}")
    features = Features(
        {
            "speech": {"bytes": Value("binary"), "path": Value("string")},
            "emotion": ClassLabel(names=["calm", "angry"]),
            "speaker": Value("string"),
        }
    )
    Dataset.from_dict({"speech": cells, "emotion": emotions, "speaker": speakers}, features=features).save_to_disk(
        str(tmp_path / "mine")
    )
    task, source = open_task(
        str(tmp_path / "mine"), tmp_path, columns={"audio": "speech", "label": "emotion", "group": "speaker"}
    )
    assert task.name == "mine" and task.labels == ("angry", "calm") and task.group_column == "speaker"
    clips = list(source)
    assert [c.label for c in clips] == ["calm", "angry"] * 3
    assert [c.group for c in clips] == speakers
    assert len({c.id for c in clips}) == 6 and all(len(c.id) == 16 for c in clips)  # content-derived ids
    assert clips[0].id == clips[0].content_hash[:16]
    # turning grouping off for a registry task that has a pattern (its labels mapped onto the task's)
    _, ungrouped = open_task(
        f"ds-distance={tmp_path / 'mine'}",
        tmp_path,
        columns={"audio": "speech", "label": "emotion", "group_pattern": "none"},
        label_map={"ds-distance": {"calm": "0.4m", "angry": "4.0m"}},
    )
    assert ungrouped.columns.group_pattern is None and not ungrouped.has_groups
    assert ungrouped.labels() == ["0.4m", "4.0m"] * 3


def test_dynamic_superb_digits_map_to_words(tmp_path):
    from datasets import Audio, Dataset

    buf = io.BytesIO()
    sf.write(buf, np.full(800, 0.1, np.float32), 16000, format="WAV")
    rows = [
        {
            "file": f"mirsd_{i}.wav",
            "audio": {"bytes": buf.getvalue(), "path": None},
            "word": "pens",
            "instruction": "Which word is stressed? The answer could be zero, one, two, three, four, or five.",
            "label": label,
        }
        for i, label in enumerate(["3", "Three", "five ", "6"])
    ]
    Dataset.from_list(rows).cast_column("audio", Audio()).save_to_disk(str(tmp_path / "mirsd"))
    _, source = open_task(f"ds-stress={tmp_path / 'mirsd'}", tmp_path)
    clips = list(source)
    assert [(c.label, c.meta["label_original"]) for c in clips] == [
        ("three", "3"),
        ("three", "Three"),
        ("five", "five "),
    ]
    assert clips[0].id == "mirsd_0.wav" and clips[1].id == "mirsd_1.wav"  # duplicate audio keeps the file ids
    assert source.outside_label_set == {"6": 1} and source.has_groups
    assert [c.group for c in clips] == ["pens"] * 3  # grouped by word (lexical leakage), the card's `word` column


def test_not_a_dataset_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpeechprobeError, match="not a task source"):
        open_task(str(tmp_path / "empty"), tmp_path)
    with pytest.raises(SpeechprobeError, match="not a dataset"):
        HFSource(tmp_path / "empty")
    with pytest.raises(SpeechprobeError, match="unknown task 'ds-nope'"):
        open_task(f"ds-nope={tmp_path}", tmp_path)


def test_manifest_specs_still_resolve(tones, tmp_path):
    task, source = open_task(str(tones), tmp_path)
    assert isinstance(source, ManifestSource) and task.labels == ("high", "low", "mid")
    odd = tmp_path / "a=b"
    shutil.copytree(tones.parent, odd)
    assert isinstance(open_task(str(odd / "manifest.csv"), tmp_path)[1], ManifestSource)  # '=' inside a path
    with pytest.raises(SpeechprobeError, match="synthetic task"):
        open_task(f"emotion={odd}", tmp_path)
