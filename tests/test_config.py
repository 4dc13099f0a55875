"""The configuration in groups: stored flat as before, one option per setting, and a new setting needs one field."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from speechprobe.cli import app
from speechprobe.cli.generated import KEEP_HELP, Options, with_settings
from speechprobe.config import ProbeSettings, RunConfig
from speechprobe.errors import ConfigError
from speechprobe.finetune.settings import FinetuneSettings
from speechprobe.probes import probe_params
from speechprobe.rundir import fingerprint
from speechprobe.settings import at_least, flat_fields, setting

# RunConfig(models=["whisper-tiny.en"], tasks=["accent"], out=Path("runs/x")).to_json() before the settings were
# grouped (with opensmile installed): run.json and manifest.json hold exactly this, so earlier runs resume.
BEFORE = {
    "device": "cpu", "dtype": None, "window": "full", "seed": 0, "cache": None, "engine": "local", "ray_address": None,
    "ray_actors": None, "models": ["whisper-tiny.en"], "tasks": ["accent"], "out": "runs/x", "probes": ["knn", "mlp"],
    "primary_probe": "knn", "folds": 5, "pooling": "mean",
    "baselines": ["mfcc", "librosa", "egemaps", "prosody", "duration", "channel", "loudness"], "random_init": False,
    "n_per_class": None, "max_batch_seconds": None, "max_clip_seconds": 600.0, "drop_duplicates": False, "n_jobs": 1,
    "columns": None, "split": None, "streaming": False, "group_by": None, "label_map": None, "permutations": 1000,
    "embeddings": True, "report": True, "cue_probes": True, "erasure": False, "layer_weights": True,
    "fingerprints": True, "similarity": True, "mdl": True, "repeats": 1, "cue_repeats": None, "cv": "kfold",
    "ungrouped": False, "rare_classes": "drop", "group_name": None, "bootstrap": 1000, "knn_k": 5, "mlp_hidden": 256,
    "mlp_alpha": 0.0001, "mlp_epochs": 200, "mlp_solver": "adam", "mlp_early_stopping": True,
    "mlp_early_stopping_min_train": 2000, "linear_c": 1.0, "tune": False,
}  # fmt: skip
BEFORE |= dict.fromkeys(("mixing_clips", "attribution_clips", "attribution_steps", "attribution_layers"))  # unset: None
BEFORE |= {"mixing_frames": None, "mixing_seconds": None}
EXTRACT_BEFORE = "424706da3bc950363330"  # the extract and probe stages' fingerprints of that config, before
PROBE_BEFORE = "9fbe7340aa1e79926cb6"


def default() -> RunConfig:
    """The defaults but the baselines, which depend on the optional packages installed (opensmile: egemaps)."""
    return RunConfig.of(models=["whisper-tiny.en"], tasks=["accent"], out=Path("runs/x"), baselines=BEFORE["baselines"])


def test_the_stored_settings_are_flat_and_unchanged():
    cfg = default()
    assert cfg.to_json() == BEFORE
    assert json.dumps(cfg.to_json(), sort_keys=True) == json.dumps(BEFORE, sort_keys=True)
    assert fingerprint(cfg.stage_config("extract")) == EXTRACT_BEFORE
    assert fingerprint(cfg.stage_config("probe")) == PROBE_BEFORE
    back = RunConfig.from_recorded(json.loads(json.dumps(cfg.to_json())), "run.json", out=Path("runs/x"))
    assert back == cfg and back.cv.scheme == "kfold" and back.probe.knn_k == 5 and back.compute.seed == 0


def test_updated_replaces_settings_in_their_groups():
    cfg = default()
    new = cfg.updated(knn_k=7, cv="logo", folds=3, progress=False, tune=True)
    assert (new.probe.knn_k, new.cv.scheme, new.cv.folds, new.compute.progress, new.tune) == (7, "logo", 3, False, True)
    assert (cfg.probe.knn_k, cfg.cv.scheme, cfg.cv.folds, cfg.tune) == (5, "kfold", 5, False)  # a copy
    assert probe_params(["knn"], 0, new.probe)["knn"]["classifier"]["n_neighbors"] == 7  # it reaches the estimator
    with pytest.raises(TypeError, match="no setting 'knn'"):
        RunConfig.of(models=[], tasks=[], out=Path("x"), knn=3)


def _options(command: str) -> dict:
    group = typer.main.get_command(app)
    return {p.name: p for p in group.commands[command].params if p.param_type_name == "option"}


HAND = {"baselines_only", "audio_column", "label_column", "group_column", "zeroshot", "resume", "overwrite"}
HAND |= {"analyses"}  # checked against the analysis registry by the option itself (cli/options.py)


@pytest.mark.parametrize("command, keep", [("run", False), ("probe", True)])
def test_each_setting_is_one_option_and_each_option_a_setting(command, keep):
    """Adding a probe setting is one field: every field of ProbeSettings is an option of run and probe, with the
    field's help, default and flag, and no option is declared apart from the fields but the hand-made ones."""
    options = _options(command)
    settings = {k: f for k, (_, f) in flat_fields(RunConfig).items() if f.metadata.get("help")}
    tuning = {k for k, (_, f) in flat_fields(FinetuneSettings).items() if f.metadata.get("help")}
    assert command != "run" or tuning <= set(options)  # run --finetune and its settings (FinetuneSettings)
    generated = set(options) - HAND - {"prompts", "modes"} - tuning
    assert generated <= set(settings)
    for f in dataclasses.fields(ProbeSettings):
        opt = options[f.name]
        assert opt.help == f.metadata["help"] + (KEEP_HELP if keep else "")
        assert opt.default == (None if keep else f.default)
        assert f"--{f.name.replace('_', '-')}" in opt.opts
    if command == "run":
        assert generated == set(settings)  # every setting with a help text, once
        assert options["cv"].opts == ["--cv"] and options["ungrouped"].opts == ["--ungrouped"]
        assert options["n_jobs"].opts == ["--jobs", "-j"] and options["ray_address"].opts == ["--address"]


def test_a_new_setting_field_becomes_an_option_with_its_check():
    """The recipe on a toy: one field with a help text gives the option, its help and default, and its value."""

    @dataclasses.dataclass(frozen=True)
    class ToySettings(ProbeSettings):
        toy_depth: int = setting(3, "Toy probe: depth of the toy tree.", check=at_least(1, "use 1 or more levels"))

    seen = {}
    toy = typer.Typer(rich_markup_mode=None)

    @toy.command()
    @with_settings(Options(ToySettings))
    def fit(settings: dict) -> None:
        seen.update(settings)
        ToySettings(**settings).validate()

    runner = CliRunner()
    shown = runner.invoke(toy, ["--help"]).output
    assert "--toy-depth" in shown and "Toy probe: depth of the toy tree." in shown and "--knn-k" in shown
    assert runner.invoke(toy, ["--toy-depth", "5", "--knn-k", "2"]).exit_code == 0
    assert seen["toy_depth"] == 5 and seen["knn_k"] == 2 and seen["mlp_solver"] == "adam"
    with pytest.raises(ConfigError, match="--toy-depth 0: use 1 or more levels"):
        ToySettings(toy_depth=0).validate()


def test_the_zeroshot_command_takes_every_zeroshot_setting():
    from speechprobe.zeroshot.config import ZeroShotConfig

    options = _options("zeroshot")
    settings = {k for k, (_, f) in flat_fields(ZeroShotConfig).items() if f.metadata.get("help")}
    assert set(options) - {"resume", "overwrite"} == settings
    assert options["language"].opts == ["--language"] and options["language"].default == "en"
    assert options["modes"].opts == ["--mode"] and options["modes"].default == "all"


def test_the_demo_keeps_its_own_defaults():
    options = _options("demo")
    assert (options["window"].default, options["probes"].default, options["repeats"].default) == ("trimmed", "knn", 5)
    assert (options["cue_repeats"].default, options["n_jobs"].default, options["erasure"].default) == (1, 2, True)


def test_the_command_line_loads_no_heavy_library():
    code = "import sys, speechprobe.cli; print(sorted(m for m in {HEAVY} if m in sys.modules))"
    heavy = ("torch", "transformers", "librosa", "sklearn", "ray", "matplotlib", "plotly", "pandas", "scipy")
    done = subprocess.run(
        [sys.executable, "-c", code.replace("{HEAVY}", repr(heavy))], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
