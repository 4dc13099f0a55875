"""Fine-tuning folds as Ray actor calls (``--engine ray``): the same fold rows as in this process, the driver
writing each fold file (resume per fold unchanged)."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from ft_threads import one_thread  # noqa: F401

pytest.importorskip("ray")

from speechprobe.cli import main
from speechprobe.finetune import stage
from speechprobe.finetune.settings import FinetuneSettings
from speechprobe.finetune.stage import run_finetune

pytestmark = pytest.mark.slow  # a tiny run, then lora twice (here and on an actor), and Ray's start-up


def root_conftest(request):
    path = str(Path(__file__).resolve().parents[1] / "conftest.py")
    return next(p for p in request.config.pluginmanager.get_plugins() if getattr(p, "__file__", None) == path)


def test_ray_folds_give_the_local_fold_rows(ray_session, tiny_whisper, tmp_path, request, monkeypatch):
    tones = root_conftest(request).tone_dataset(tmp_path / "tones", n_per_class=4)
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    args = ["run", "--models", str(tiny_whisper), "--tasks", str(tones), "--out", str(local), "--baselines", "none"]
    args += ["--probes", "knn", "--window", "trimmed", "--folds", "3", "--permutations", "0", "--bootstrap", "0"]
    args += ["--no-embeddings", "--no-cue-probes", "--no-fingerprints", "--no-similarity", "--no-mdl", "--no-report"]
    assert main(args) == 0
    shutil.copytree(local, on_ray)
    settings = FinetuneSettings(method="lora", epochs=2, lora_rank=2)
    here = run_finetune(local, settings)
    monkeypatch.setattr(stage, "LocalFolds", None)  # from here on, no fold may train in this process
    there = run_finetune(on_ray, settings, engine={"engine": "ray", "ray_actors": 1})
    assert set(here["probe"]) == {"ft-head", "ft-lora"} and len(here) == 2 * 3 * 2  # probes x folds x metrics
    pd.testing.assert_frame_equal(here, there)  # every fold's Macro-F1 and accuracy, value for value
    for path in sorted((local / "finetune").glob("*/fold*.json")):
        mine, theirs = json.loads(path.read_text()), json.loads((on_ray / path.relative_to(local)).read_text())
        assert theirs["items"] == mine["items"] and theirs["curve"] == mine["curve"]
        assert theirs["best_epoch"] == mine["best_epoch"]
