"""Every registered Dynamic-SUPERB task, end to end offline on a copy in its card's schema (tests/ds_fixtures.py):
probes (a tiny Whisper and MFCC), zero-shot prompts (each clip's dataset instruction) and the report, whose
paralinguistic split is Dynamic-SUPERB's dimensions. About 90 s on one core for the twelve tasks (build 10 s, run
33 s, zero-shot 23 s, report 16 s)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ds_fixtures import CARDS, DS_DIMENSIONS, counts, write_copy
from speechprobe.config import RunConfig
from speechprobe.data.dynamic_superb import TASKS
from speechprobe.pipeline import run, run_zeroshot_stage
from speechprobe.report import build_report
from speechprobe.zeroshot import ZeroShotConfig

PARALINGUISTIC = DS_DIMENSIONS["paralinguistic"]
GROUPS = {  # task -> (group kind, number of groups in the fixture)
    "ds-accent": ("speaker", 36),  # <label>_sNN: a speaker per accent and index
    "ds-emotion": ("dialogue", 4),
    "ds-dialogue-emotion": ("dialogue", 4),
    "ds-stress": ("word", 33),  # every word of the fixture (a word's stress is fixed: lexical leakage)
    "ds-distance": ("speaker", 4),
    "ds-sarcasm": (None, 0),
    "ds-multi-speaker-librispeech": ("speaker", 4),
    "ds-multi-speaker-vctk": ("speaker", 4),
    "ds-speaker-count": ("speaker", 4),
    "ds-dialogue-act": ("dialogue", 4),
    "ds-spoof": (None, 0),
    "ds-spoof-2015": (None, 0),
}


@pytest.fixture(scope="module")
def ds_run(tmp_path_factory, tiny_whisper_dec):
    """One run over the twelve fixtures: probes, zero-shot, report."""
    root = tmp_path_factory.mktemp("ds-fixtures")
    specs = [f"{t.name}={write_copy(t.name, root / t.name)}" for t in TASKS]
    out = root / "run"
    common = dict(models=[str(tiny_whisper_dec)], tasks=specs, out=out, window="trimmed", cache=root / "cache")
    cfg = RunConfig.of(
        **common,
        baselines=["mfcc"],
        folds=2,
        probes=["knn"],
        permutations=0,
        bootstrap=0,
        embeddings=False,
        cue_probes=False,
        layer_weights=False,
        fingerprints=False,
        similarity=False,
        mdl=False,
        report=False,
        progress=False,
    )
    run(cfg)
    zs = ZeroShotConfig(**common, prompts=["instruction"], modes=["likelihood"], batch_size=16, progress=False)
    run_zeroshot_stage(zs)
    build_report(out)
    return out


def test_every_registered_task_has_a_fixture():
    assert set(CARDS) == {t.name for t in TASKS}


@pytest.mark.slow
def test_each_fixture_runs_end_to_end(ds_run):
    manifest = json.loads((ds_run / "manifest.json").read_text())
    results = pd.read_csv(ds_run / "results.csv")
    for task in TASKS:
        info = manifest["tasks"][task.name]
        assert info["dimension"] == task.dimension and info["paralinguistic"] == (task.name in PARALINGUISTIC)
        assert info["label_semantics"] == task.label_semantics
        assert info["n_skipped"] == 0 and info["labels_outside_label_set"] == {}
        assert info["labels"] == {str(k).lower(): v for k, v in counts(CARDS[task.name], 40).items()}
        kind, n_groups = GROUPS[task.name]
        assert info["group_by"] == kind and info["grouped_folds"] == (kind is not None)
        clips = pd.read_csv(ds_run / info["clips_file"], keep_default_na=False)
        assert clips["group"].replace("", None).nunique() == n_groups, task.name
        revision = info["revision"]
        assert revision["kind"] == "local" and revision["commit"] is None and len(revision["content_hash"]) == 64
        rows = results[results.task == task.name]
        assert "mfcc" in set(rows["model"]) and rows["model"].nunique() == 2
        assert {"knn", "zeroshot:likelihood:instruction"} <= set(rows["probe"])
    zeroshot = manifest["zeroshot"]["tasks"]["ds-stress"]["revision"]
    assert zeroshot == manifest["tasks"]["ds-stress"]["revision"]  # zero-shot read the same copy
    spoof = manifest["tasks"]["ds-spoof"]["labels"]
    assert spoof["spoofed"] > 8 * spoof["authentic"]  # the card's 90 % majority kept


@pytest.mark.slow
def test_report_splits_tasks_by_dynamic_superb_dimensions(ds_run):
    page = (ds_run / "report.md").read_text()
    section = page.split("### Paralinguistic vs non-paralinguistic tasks", 1)[1].split("###", 1)[0]
    groups = {}
    for line in section.splitlines():  # | model | group | n_tasks | ... | tasks |
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) > 3 and cells[1] in ("paralinguistic", "non-paralinguistic"):
            groups[cells[1]] = set(cells[-1].split(", "))
    assert groups == {
        "paralinguistic": PARALINGUISTIC,
        "non-paralinguistic": DS_DIMENSIONS["semantic"] | DS_DIMENSIONS["speaker"],
    }
