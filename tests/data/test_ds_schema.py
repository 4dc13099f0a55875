"""Dynamic-SUPERB copies in their cards' schema (tests/ds_fixtures.py): groups from the data (--group-by), label
checks before extraction (values seen in the wild mapped, the rest listed with a way to map them), and
revisions (pinned, resolved, recorded; local copies' commits and content hashes). No network."""

from __future__ import annotations

import glob
import json
import os
import shutil
from pathlib import Path

import pytest

from ds_fixtures import rows, write_copy
from speechprobe.data.labels import parse_label_map
from speechprobe.data.resolve import open_task
from speechprobe.data.revision import revision_changes
from speechprobe.errors import ConfigError, SpeechprobeError

COMMIT_A, COMMIT_B = "a" * 40, "b" * 40


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    import datasets
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


def test_stress_groups_by_word_or_by_the_reader_in_the_path(tmp_path):
    copy = write_copy("ds-stress", tmp_path / "mirsd")
    task, source = open_task(f"ds-stress={copy}", tmp_path)
    assert task.group_by == "word" and source.groups()[:3] == ["plausible", "table", "happy"]
    assert "(stressed syllable" not in task.cue and "1-based position" in task.label_semantics
    task, source = open_task(f"ds-stress={copy}", tmp_path, group_by="speaker")
    assert task.group_by == "speaker" and set(source.groups()) == {"yifen", "annar", "tomsk", "lilia"}
    _, source = open_task(f"ds-stress={copy}", tmp_path, group_by="ds-accent=speaker")  # another task's choice
    assert source.groups()[0] == "plausible"
    with pytest.raises(ConfigError, match="--group-by dialogue: task ds-stress has no dialogue grouping"):
        open_task(f"ds-stress={copy}", tmp_path, group_by="dialogue")


@pytest.mark.parametrize(
    "task, first",
    [("ds-multi-speaker-librispeech", "1000"), ("ds-multi-speaker-vctk", "p225"), ("ds-speaker-count", "1000")],
)
def test_mixtures_group_by_the_first_talker_where_the_copy_has_the_column(tmp_path, task, first):
    _, source = open_task(f"{task}={write_copy(task, tmp_path / 'with')}", tmp_path)
    assert source.groups()[0] == first and len(set(source.groups())) == 4
    bare = [{k: v for k, v in r.items() if not k.startswith("utterance")} for r in rows(task)]
    t, source = open_task(f"{task}={write_copy(task, tmp_path / 'without', rows_=bare)}", tmp_path)
    assert source.groups() is None and not t.group_by and t.group_source() == "none"
    assert source.group_missing == "this copy has no column 'utterance 1': its clips have no group"


def test_dailytalk_groups_by_dialogue_or_by_its_two_actors(tmp_path):
    copy = write_copy("ds-dialogue-emotion", tmp_path / "dt")
    task, source = open_task(f"ds-dialogue-emotion={copy}", tmp_path)
    assert set(source.groups()) == {"d0", "d1", "d2", "d3"} and "two voice actors" in task.group_caveat
    task, source = open_task(f"ds-dialogue-emotion={copy}", tmp_path, group_by="speaker")
    assert set(source.groups()) == {"0", "1"} and task.group_caveat == ""
    assert source.labels().count("no_emotion") == 32  # the card's spelling, 80 % of the turns


def test_values_seen_in_the_wild_are_mapped(tmp_path):
    base = rows("ds-distance")
    for r, spelling in zip(base, ["0.4 m", "0.4M", 0.4, "2m", 2.0, " 4.0 meters", "4"] * 10):
        r["label"] = str(spelling)
    _, source = open_task(f"ds-distance={write_copy('ds-distance', tmp_path / 'd', rows_=base)}", tmp_path)
    assert set(source.labels()) == {"0.4m", "2.0m", "4.0m"} and not source.label_survey()[0]
    sarcasm = write_copy("ds-sarcasm", tmp_path / "s")  # a boolean column
    _, source = open_task(f"ds-sarcasm={sarcasm}", tmp_path)
    assert sorted(set(source.labels())) == ["false", "true"] and len(source.labels()) == 40
    mixed = rows("ds-sarcasm")
    for r, spelling in zip(mixed, ["True", "false", "TRUE", "1", "0", "yes"] * 10):
        r["label"] = spelling
    _, source = open_task(f"ds-sarcasm={write_copy('ds-sarcasm', tmp_path / 'm', rows_=mixed)}", tmp_path)
    assert source.labels()[:6] == ["true", "false", "true", "true", "false", "true"]


def test_an_old_distance_revision_stops_before_extraction_with_its_values(tmp_path, monkeypatch):
    old = rows("ds-distance")
    for i, r in enumerate(old):  # earlier revisions: 0.0 ... 1.3 against a 0.4m / 2.0m / 4.0m instruction
        r["label"] = f"{(i % 11) / 10 + 0.3 * (i % 11 == 10):.1f}"
    copy = write_copy("ds-distance", tmp_path / "old", rows_=old)
    monkeypatch.setattr("speechprobe.data.hf.HFSource.__iter__", lambda self: pytest.fail("extraction began"))
    with pytest.raises(ConfigError) as e:
        open_task(f"ds-distance={copy}", tmp_path)
    msg = str(e.value)
    # '0.4' maps to 0.4m (the digit spelling), the other ten values are outside: 35 of 39 rows
    assert msg.startswith("task ds-distance: 35 of 39 labelled rows (90%, more than 5%) carry labels outside")
    assert "'0.0' 4, '0.1' 4" in msg and "'1.3' 3" in msg and "'0.4'" not in msg
    assert "--label-map 'ds-distance:0.0=0.4m'" in msg and ".labelmap.json" in msg and "ds-distance@COMMIT" in msg
    everything = {f"{(k / 10 + 0.3 * (k == 10)):.1f}": "0.4m" for k in range(11)}
    task, source = open_task(f"ds-distance={copy}", tmp_path, label_map={"ds-distance": everything})
    assert set(source.labels()) == {"0.4m"}
    Path(f"{copy}.labelmap.json").write_text(json.dumps({"ds-distance": everything}))  # the sidecar
    assert set(open_task(f"ds-distance={copy}", tmp_path)[1].labels()) == {"0.4m"}


def test_a_few_stray_rows_are_skipped_not_stopped(tmp_path):
    some = rows("ds-dialogue-act")
    some[0]["label"] = "greeting"  # 1 of 39 rows: skipped and counted
    _, source = open_task(f"ds-dialogue-act={write_copy('ds-dialogue-act', tmp_path / 'a', rows_=some)}", tmp_path)
    assert source.label_survey() == ({"greeting": 1}, 39) and len(source.labels()) == 38


def test_a_manifest_of_a_registered_task_is_checked_against_its_label_set(tmp_path):
    import numpy as np
    import soundfile as sf

    for i in range(6):
        sf.write(tmp_path / f"c{i}.wav", np.full(1600, 0.1, np.float32), 16000)
    (tmp_path / "emo.csv").write_text(
        "path,label,group\n" + "".join(f"c{i}.wav,{x},d{i % 2}\n" for i, x in enumerate(["neutral", "no_emotion"] * 3))
    )
    task, source = open_task(f"ds-dialogue-emotion={tmp_path / 'emo.csv'}", tmp_path)
    assert source.labels() == ["no_emotion"] * 6 and task.labels[-1] == "no_emotion"
    assert [c.meta["label_original"] for c in source][:2] == ["neutral", "no_emotion"]
    (tmp_path / "bad.csv").write_text("path,label\n" + "".join(f"c{i}.wav,calm\n" for i in range(5)) + "c5.wav,fear\n")
    with pytest.raises(ConfigError, match=r"task ds-dialogue-emotion: 5 of 6 labelled rows .* 'calm' 5"):
        open_task(f"ds-dialogue-emotion={tmp_path / 'bad.csv'}", tmp_path)
    task, source = open_task(
        f"ds-dialogue-emotion={tmp_path / 'bad.csv'}", tmp_path, label_map=parse_label_map("calm=no_emotion")
    )
    assert source.labels() == ["no_emotion"] * 5 + ["fear"]


def test_label_map_option_forms(tmp_path):
    assert parse_label_map("0.0=0.4m, ds-stress:3=three") == {"*": {"0.0": "0.4m"}, "ds-stress": {"3": "three"}}
    (tmp_path / "m.json").write_text(json.dumps({"No Emotion ": "no_emotion", "ds-sarcasm": {"sarcastic!": "true"}}))
    assert parse_label_map(str(tmp_path / "m.json")) == {
        "ds-sarcasm": {"sarcastic!": "true"},
        "*": {"no emotion": "no_emotion"},
    }
    for bad in ("nothing", "=x", "task:=x"):
        with pytest.raises(ConfigError, match="expected FROM=TO or TASK:FROM=TO"):
            parse_label_map(bad)
    (tmp_path / "bad.json").write_text("[1]")
    with pytest.raises(ConfigError, match=r"label map .*bad.json: expected an object"):
        parse_label_map(str(tmp_path / "bad.json"))


def _hf_cache_copy(cache: Path, task_rows: list[dict], commit: str) -> None:
    """The HF datasets cache as ``load_dataset('DynamicSuperb/StressDetection_MIRSD')`` leaves it at ``commit``."""
    import datasets
    from datasets import Audio, Dataset

    ds = Dataset.from_list(task_rows).cast_column("audio", Audio())
    ds.to_parquet(str(cache.parent / "x.parquet"))
    datasets.load_dataset("parquet", data_files={"test": str(cache.parent / "x.parquet")}, cache_dir=str(cache))
    built = next(p for p in glob.glob(f"{cache}/parquet/*/*/*") if os.path.isdir(p))
    target = cache / "DynamicSuperb___stress_detection_mirsd" / "default" / "0.0.0" / commit
    target.mkdir(parents=True)
    info = json.loads(Path(built, "dataset_info.json").read_text())
    info.update(config_name="default", dataset_name="stress_detection_mirsd")
    (target / "dataset_info.json").write_text(json.dumps(info))
    for f in Path(built).glob("*.arrow"):
        shutil.copy(f, target / f.name.replace("parquet-", "stress_detection_mirsd-"))


def test_hub_loading_records_the_commit_and_refuses_another_pin(tmp_path, monkeypatch):
    import datasets

    cache = tmp_path / "hf-cache"
    _hf_cache_copy(cache, rows("ds-stress"), COMMIT_A)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(cache))
    task, source = open_task("ds-stress", tmp_path)  # datasets.load_dataset(hub id), from the cache offline
    assert source.kind == "hub" and len(source.labels()) == 48 and source.groups()[0] == "plausible"
    assert source.revision_record == {
        "kind": "hub",
        "repo": "DynamicSuperb/StressDetection_MIRSD",
        "requested": None,
        "commit": COMMIT_A,
    }
    task, source = open_task(f"ds-stress@{COMMIT_A}", tmp_path)
    assert task.revision == COMMIT_A and source.revision_record["requested"] == COMMIT_A
    with pytest.raises(SpeechprobeError, match=f"pinned to commit {COMMIT_B} but {COMMIT_A} was read"):
        open_task(f"ds-stress@{COMMIT_B}", tmp_path)


def test_local_copies_record_what_is_knowable(tmp_path):
    copy = write_copy("ds-stress", tmp_path / "plain")
    rec = open_task(f"ds-stress={copy}", tmp_path)[1].revision_record
    assert rec["kind"] == "local" and rec["commit"] is None and len(rec["content_hash"]) == 64
    assert open_task(f"ds-stress={copy}", tmp_path)[1].revision_record == rec  # content-derived: stable
    meta = tmp_path / "dl" / ".cache" / "huggingface" / "download" / "data"  # huggingface-cli download --local-dir
    shutil.copytree(copy, tmp_path / "dl", dirs_exist_ok=True)
    meta.mkdir(parents=True)
    (meta / "test-00000-of-00001.parquet.metadata").write_text(f"{COMMIT_A}\netag\n1700000000.0\n")
    rec_dl = open_task(f"ds-stress={tmp_path / 'dl'}", tmp_path)[1].revision_record
    assert rec_dl["commit"] == COMMIT_A and rec_dl["content_hash"] == rec["content_hash"]
    with pytest.raises(SpeechprobeError, match=f"pinned to commit {COMMIT_B}, but this copy is commit {COMMIT_A}"):
        open_task(f"ds-stress@{COMMIT_B}={tmp_path / 'dl'}", tmp_path)
    changed = rows("ds-stress")
    changed[0]["label"] = "two"
    other = open_task(f"ds-stress={write_copy('ds-stress', tmp_path / 'changed', rows_=changed)}", tmp_path)
    assert revision_changes(
        {"ds-stress": {"revision": rec}}, {"ds-stress": {"revision": other[1].revision_record}}
    ) == [f"ds-stress: recorded content_hash {rec['content_hash']}, now {other[1].revision_record['content_hash']}"]


def test_reproduce_refuses_a_dataset_whose_content_changed(tmp_path):
    from speechprobe.config import RunConfig
    from speechprobe.reproduce import check_revisions

    copy = write_copy("ds-spoof", tmp_path / "spoof")
    now = open_task(f"ds-spoof={copy}", tmp_path)[1].revision_record
    cfg = RunConfig.of(models=[], baselines=["mfcc"], tasks=[f"ds-spoof={copy}", "emotion"], out=tmp_path / "r")
    same = {"tasks": {"ds-spoof": {"revision": now}, "emotion": {"revision": None}}}
    assert check_revisions(same, cfg) == []  # the synthetic task is not opened (nor generated)
    old = {"tasks": {"ds-spoof": {"revision": {**now, "content_hash": "0" * 64}}}}
    with pytest.raises(
        ConfigError, match=r"the data changed since the run: ds-spoof: recorded content_hash 0{64}, now "
    ):
        check_revisions(old, cfg)
    assert check_revisions(old, cfg, allow=True) == [
        f"ds-spoof: recorded content_hash {'0' * 64}, now {now['content_hash']}"
    ]


def test_group_by_and_label_map_are_run_settings(tmp_path):
    from speechprobe.config import RunConfig
    from speechprobe.rundir import fingerprint

    cfg = RunConfig.of(models=[], baselines=["mfcc"], tasks=["ds-stress"], out=tmp_path)
    unset = cfg.stage_config("extract")
    assert "group_by" not in unset and "label_map" not in unset  # older runs' fingerprints stay as they were
    cfg.group_by, cfg.label_map = "speaker", parse_label_map("ds-stress:0=zero")
    chosen = cfg.stage_config("extract")
    assert chosen["group_by"] == "speaker" and chosen["label_map"] == {"ds-stress": {"0": "zero"}}
    assert fingerprint(chosen) != fingerprint(unset) and cfg.to_json()["group_by"] == "speaker"  # manifest config
