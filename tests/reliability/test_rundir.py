"""RunDir: the claim rules, row replacement, one reader, the slug; and the small helpers it relies on."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest

from speechprobe.cli import split_global_flags
from speechprobe.config import RunConfig
from speechprobe.data.duplicates import resolve_duplicates
from speechprobe.errors import ConfigError, SpeechprobeError
from speechprobe.pipeline import validate
from speechprobe.rundir import RESULT_COLUMNS, RunDir, read_results, register_file, slug
from speechprobe.warnlog import capture_warnings


def rows(model: str, probe: str, value: float, layer="0") -> pd.DataFrame:
    return pd.DataFrame([(model, "t", layer, probe, 0, "macro_f1", value)], columns=RESULT_COLUMNS)


def test_slug_keeps_safe_names_and_never_collides():
    assert slug("emotion") == "emotion" and slug("whisper-base.en_v2") == "whisper-base.en_v2"
    odd = ["a b", "a_b", "a/b", "ä b", "$x$", "///", ""]
    names = [slug(n) for n in odd]
    assert len(set(names)) == len(odd) and all(n.replace("-", "").replace("_", "").isalnum() for n in names[:4])
    assert slug("data/my tasks/manifest.csv").startswith("data_my_tasks_manifest.csv-")


def test_claim_resumes_refuses_and_overwrites(tmp_path):
    run = RunDir(tmp_path / "run")
    assert run.claim("probe", {"folds": 5}) == "new"
    assert run.claim("probe", {"folds": 3}) == "new"  # nothing written yet: nothing binds
    run.write_csv("partial/k.csv", rows("m", "knn", 0.5))
    assert run.claim("probe", {"folds": 3}) == "resumed"
    with pytest.raises(ConfigError) as e:
        run.claim("probe", {"folds": 5})
    message = str(e.value)
    assert str(run.root) in message and "folds: 3 → 5" in message and "--overwrite" in message and "\n" not in message
    with pytest.raises(ConfigError):
        run.claim("probe", {"folds": 5}, "resume")  # --resume continues only the same settings
    assert run.claim("probe", {"folds": 5}, "overwrite") == "overwritten" and not run.path("partial").exists()


def test_legacy_files_need_a_flag_and_stages_must_share_their_data(tmp_path):
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    (run.root / "results.csv").write_text("model,task,layer,probe,fold,metric,value\n")
    (run.root / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="settings are unknown; pass --resume"):
        run.claim("extract", {"seed": 0})
    assert run.claim("extract", {"seed": 0, "n_per_class": None}, "resume") == "new"
    run.write_json("state.json", {})
    with pytest.raises(ConfigError, match="over other data .*seed 0, this 1"):
        run.claim("zeroshot", {"seed": 1, "n_per_class": None})
    assert run.claim("zeroshot", {"seed": 1, "n_per_class": None}, "overwrite") == "overwritten"
    assert (run.root / "notes.txt").read_text() == "mine"  # only speechprobe's own files are removed
    assert list(run.stages()) == ["zeroshot"] and not run.path("state.json").exists()


def test_each_stage_replaces_only_its_rows(tmp_path):
    run = RunDir(tmp_path)
    run.replace_rows("probe", pd.concat([rows("m", "knn", 0.5), rows("m", "mlp", 0.6)]))
    run.replace_rows("zeroshot", rows("m", "zeroshot:generate:choose", 0.3, layer=""))
    merged = run.replace_rows("probe", rows("m", "knn", 0.7))  # probing again: mlp gone, zero-shot kept
    assert list(merged["probe"]) == ["knn", "zeroshot:generate:choose"] and list(merged["value"]) == [0.7, 0.3]
    back = read_results(run.path("results.csv"))
    assert back["layer"].isna().tolist() == [False, True] and str(back["fold"].dtype) == "Int64"
    with pytest.raises(SpeechprobeError, match="results of two runs are mixed"):
        run.replace_rows("probe", pd.concat([rows("m", "knn", 0.1), rows("m", "knn", 0.2)]))


def test_registered_files_leave_with_their_stage(tmp_path):
    register_file("probe", "extra-test-files")
    run = RunDir(tmp_path)
    run.claim("probe", {"a": 1})
    run.write_csv("extra-test-files/t.csv", rows("m", "knn", 0.5))
    run.write_csv("partial/x.csv", rows("m", "knn", 0.5))
    run.claim("probe", {"a": 2}, "overwrite")
    assert not run.path("extra-test-files").exists()


def test_manifest_sections_are_replaced_not_the_file(tmp_path):
    run = RunDir(tmp_path)
    run.update_manifest({"zeroshot": {"x": 1}})
    run.update_manifest({"config": {"folds": 2}}, defaults={"zeroshot": {"x": 2}, "seed": 0})
    assert json.loads(run.path("manifest.json").read_text()) == {
        "zeroshot": {"x": 1},
        "config": {"folds": 2},
        "seed": 0,
    }


def test_stage_configs_split_extraction_from_probing(tmp_path):
    cfg = RunConfig.of(models=["m"], tasks=["t"], out=tmp_path, folds=3, n_jobs=4, progress=False)
    extract, probe = cfg.stage_config("extract"), cfg.stage_config("probe")
    assert {"models", "tasks", "seed", "window"} <= set(extract) and "folds" not in extract
    assert {"probes", "folds", "seed", "permutations"} <= set(probe) and "models" not in probe
    assert not {"n_jobs", "out", "cache", "engine", "progress", "report"} & (set(extract) | set(probe))
    with pytest.raises(ConfigError, match="--probes svm: choose from knn, mlp, linear"):
        validate(RunConfig.of(models=["m"], tasks=["t"], out=tmp_path, probes=["svm"], primary_probe="svm"))


def test_duplicates_merge_connected_groups_or_drop():
    hashes, labels = ["h1", "h2", "h1", "h3", "h2"], ["a", "b", "a", "a", "c"]
    keep, groups, rep = resolve_duplicates(hashes, labels, ["g1", "g2", "g3", "g4", "g5"])
    assert keep == [True] * 5 and groups == ["g1", "g2", "g1", "g4", "g2"]
    assert (rep.copies, rep.contents, rep.conflicting_labels, rep.groups_merged) == (2, 2, 1, 2)
    keep, _, rep = resolve_duplicates(hashes, labels, [None] * 5, drop=True)
    assert keep == [True, False, False, True, False] and rep.dropped == 3  # h2 has two labels: dropped whole
    _, groups, _ = resolve_duplicates(hashes, labels, [None] * 5)
    assert groups[0] == groups[2] != groups[1] == groups[4]  # ungrouped: one group per content


def test_global_flags_anywhere_and_warnings_counted_once(caplog):
    flags, rest = split_global_flags(["run", "--tasks", "x", "--no-progress", "--debug", "--", "--debug"])
    assert (flags.debug, flags.progress, rest) == (True, False, ["run", "--tasks", "x", "--", "--debug"])
    with capture_warnings() as log:
        for _ in range(3):
            warnings.warn("same thing", UserWarning, stacklevel=1)
            warnings.warn("same thing", UserWarning, stacklevel=2)  # another source line: counted again
    shown = [r for r in caplog.records if "library warning" in r.getMessage()]
    assert len(shown) == 1 and log.as_json()["count"] == 2 and log.as_json()["kinds"][0]["message"] == "same thing"
