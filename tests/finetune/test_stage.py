"""The fine-tuning stage end to end on a tiny Whisper run (``speechprobe run --finetune lora``): the probes'
folds, resume per fold, the ladder and the report, ``speechprobe finetune``."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ft_threads import one_thread  # noqa: F401

from speechprobe.cli import main
from speechprobe.finetune import folds as folds_module
from speechprobe.finetune.settings import FinetuneSettings
from speechprobe.finetune.stage import run_finetune
from speechprobe.probes.predictions import read_predictions
from speechprobe.rundir import read_results

pytestmark = pytest.mark.slow  # a run, then fine-tuning of two methods over its folds


def root_conftest(request):
    """tests/conftest.py as pytest loaded it (``import conftest`` would find whichever conftest came first)."""
    path = str(Path(__file__).resolve().parents[1] / "conftest.py")
    return next(p for p in request.config.pluginmanager.get_plugins() if getattr(p, "__file__", None) == path)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, tiny_whisper, request):
    tone_dataset = root_conftest(request).tone_dataset
    root = tmp_path_factory.mktemp("ft-run")
    tasks = tone_dataset(root / "tones", n_per_class=6)
    out = root / "run"
    off = ["--no-embeddings", "--no-cue-probes", "--no-fingerprints", "--no-similarity", "--no-mdl"]
    args = ["run", "--models", str(tiny_whisper), "--tasks", str(tasks), "--out", str(out), "--baselines", "none"]
    args += ["--probes", "knn", "--window", "trimmed", "--folds", "3", "--permutations", "0", "--bootstrap", "0", *off]
    assert main([*args, "--finetune", "lora", "--ft-epochs", "2", "--ft-lora-rank", "2"]) == 0  # run --finetune
    rows = read_results(out / "finetune.csv")
    return out, rows


def test_the_finetuning_folds_are_the_probes_folds_and_test_clips_never_train(tuned):
    out, _ = tuned
    oof = read_predictions(out, "tiny-whisper0", "tones")
    assert oof is not None
    for probe in ("ft-head", "ft-lora"):
        files = sorted((out / "finetune").glob(f"*__{probe}/fold*.json"))
        assert len(files) == 3
        for path in files:
            record = json.loads(path.read_text())
            fold, items = record["fold"], record["items"]
            assert sorted(items["test"]) == np.flatnonzero(oof.fold_of[0] == fold).tolist()
            assert not set(items["test"]) & (set(items["fit"]) | set(items["val"]))
            assert sorted(items["fit"] + items["val"] + items["test"]) == list(range(oof.fold_of.shape[1]))


def test_finetune_csv_is_tidy_fold_level_rows(tuned):
    out, rows = tuned
    table = pd.read_csv(out / "finetune.csv")
    assert list(table.columns) == ["model", "task", "layer", "probe", "fold", "metric", "value"]
    assert set(table["probe"]) == {"ft-head", "ft-lora"} and set(table["fold"]) == {0, 1, 2}
    assert set(table["metric"]) == {"macro_f1", "accuracy"} and table["value"].between(0, 1).all()
    assert (table["layer"] == 2).all() and len(rows) == len(table)
    curves = pd.read_csv(out / "finetune_curves.csv")
    assert set(curves["split"]) == {"fit", "val"} and curves["epoch"].between(1, 2).all()


def test_the_heads_layer_weights_cover_every_layer_and_sum_to_one_per_fold(tuned):
    out, _ = tuned
    weights = pd.read_csv(out / "finetune_layers.csv")
    assert list(weights.columns) == ["model", "task", "probe", "fold", "layer", "weight"]
    for _, fold in weights.groupby(["probe", "fold"]):
        assert fold["layer"].tolist() == [0, 1, 2] and fold["weight"].sum() == pytest.approx(1.0)
    assert weights["weight"].between(0, 1).all() and weights["weight"].std() > 0  # trained away from uniform


def test_rerun_resumes_every_finished_fold(tuned, monkeypatch):
    out, rows = tuned

    def no_training(*args, **kwargs):
        raise AssertionError("a finished fold was trained again")

    monkeypatch.setattr(folds_module, "train_fold", no_training)
    again = run_finetune(out, FinetuneSettings(method="lora", epochs=2, lora_rank=2))
    pd.testing.assert_frame_equal(again, rows, check_dtype=False)
    (out / "finetune" / "tiny-whisper0__tones__ft-head" / "fold1.json").unlink()
    with pytest.raises(AssertionError, match="trained again"):  # exactly the missing fold runs
        run_finetune(out, FinetuneSettings(method="lora", epochs=2, lora_rank=2))


def test_ladder_rows_findings_and_report(tuned):
    out, _ = tuned
    ladder = pd.read_csv(out / "ladder.csv")
    assert ladder["rung"].tolist() == ["best frozen layer", "all-layer weighting", "head", "fine-tuned"]
    head = ladder[ladder["rung"] == "head"].iloc[0]
    assert head["n_folds"] == 3 and 0 <= head["low"] <= head["mean"] <= head["high"] <= 1
    assert ladder["low"].dropna().ge(0).all() and ladder["high"].dropna().le(1).all()  # scores: clipped to [0, 1]
    weights = pd.read_csv(out / "finetune_layers.csv")
    mean = weights[weights["probe"] == "ft-head"].groupby("layer")["weight"].mean()
    assert (head["top_layer"], head["top_weight"], head["n_read"]) == (mean.idxmax(), pytest.approx(mean.max()), 3)
    assert np.isfinite(head["gain"]) and np.isfinite(head["step"])
    sentences = json.loads((out / "analyses" / "ladder.json").read_text())["findings"]
    assert sentences and "over the best frozen layer" in sentences[0]
    assert "Fine-tuning ladder" in (out / "report.html").read_text()


def test_other_settings_are_refused_and_cli_finetunes(tuned, capsys):
    out, _ = tuned
    assert main(["finetune", str(out), "--method", "head", "--ft-epochs", "3"]) == 2  # other numbers: refused
    assert "other finetune settings" in capsys.readouterr().err
    last = ["--ft-epochs", "2", "--ft-lora-rank", "2", "--ft-layers", "last"]  # another head: its folds not reused
    assert main(["finetune", str(out), "--method", "head", *last]) == 2
    assert "other finetune settings" in (err := capsys.readouterr().err) and "layers" in err
    assert main(["finetune", str(out), "--method", "head", "--ft-epochs", "2", "--ft-lora-rank", "2"]) == 0
    assert "ft-head: Macro-F1" in capsys.readouterr().out
    assert main(["finetune", str(out), "--method", "head", "--address", "auto"]) == 2  # the run's engine is local
    assert "--address and --ray-actors need --engine ray" in capsys.readouterr().err


def test_finetune_of_a_directory_that_is_no_run_points_at_run_finetune(tmp_path, capsys):
    assert main(["finetune", str(tmp_path), "--method", "head"]) == 2
    err = capsys.readouterr().err
    assert "not a run directory (no state.json)" in err and f"--out {tmp_path} --finetune METHOD" in err


def test_compare_sets_the_runs_ladders_side_by_side(tuned):
    from speechprobe.report.compare import ladders

    out, _ = tuned
    both = ladders([out, out.parent], ["a", "b"])  # the second holds no ladder: left out
    assert set(both["run"]) == {"a"} and len(both) == len(pd.read_csv(out / "ladder.csv"))
    assert ladders([out, out], ["a", "b"])["run"].value_counts().to_dict() == {"a": 4, "b": 4}


def test_compare_draws_the_runs_ladders_side_by_side(tuned, tmp_path):
    import shutil

    from speechprobe.report.compare import compare_runs

    out, _ = tuned
    twin = tmp_path / "twin"
    shutil.copytree(out, twin)
    page = compare_runs([out, twin], tmp_path / "cmp", labels=["a", "b"]).read_text()
    assert "id='fig-compare-ladder-tones'" in page
    start = page.index("id='spec-compare-ladder-tones'>") + len("id='spec-compare-ladder-tones'>")
    spec = json.loads(page[start : page.index("</script>", start)])
    ladder = pd.read_csv(out / "ladder.csv")
    assert [t["name"] for t in spec["data"]] == ["a · tiny-whisper0", "b · tiny-whisper0"]
    for trace in spec["data"]:  # every rung in order, its mean and interval as in ladder.csv
        assert trace["x"] == ladder["rung"].tolist() and trace["y"] == pytest.approx(ladder["mean"].tolist())
        assert trace["error_y"]["array"] == pytest.approx((ladder["high"] - ladder["mean"]).tolist())
    assert spec["layout"]["barmode"] == "group" and spec["layout"]["shapes"][0]["y0"] == pytest.approx(1 / 3)


def test_the_zero_shot_rung_is_the_default_selection_never_the_oracle(tuned, tmp_path):
    import shutil

    from speechprobe.analysis.plan import analyse

    out = tmp_path / "run"
    shutil.copytree(tuned[0], out)
    zs = pd.DataFrame(
        [
            {
                "model": "tiny-whisper0",
                "task": "tones",
                "selection": "default",
                "mode": "likelihood_bc",
                "zeroshot_f1": 0.3,
            },
            {"model": "tiny-whisper0", "task": "tones", "selection": "oracle", "mode": "generate", "zeroshot_f1": 0.9},
        ]
    )
    zs.to_csv(out / "zeroshot_vs_probe.csv", index=False)
    analyse(out, "ladder", reuse=False)
    ladder = pd.read_csv(out / "ladder.csv")
    first = ladder.iloc[0]
    assert (first["rung"], first["source"], first["mean"], first["n_folds"]) == ("zero-shot", "likelihood_bc", 0.3, 0)
    assert np.isnan(ladder.iloc[1]["step"])  # no paired step from a single evaluation


def test_finetune_overwrite_writes_the_report_again(tuned, tmp_path):
    """--overwrite removes the run's report with the stage's files; the report is rebuilt with the new ladder."""
    import shutil

    out = tmp_path / "run"
    shutil.copytree(tuned[0], out)
    args = ["--method", "head", "--ft-epochs", "1", "--ft-layers", "last", "--overwrite"]
    assert main(["finetune", str(out), *args]) == 0
    assert "Fine-tuning ladder" in (out / "report.html").read_text()
    assert set(pd.read_csv(out / "finetune_layers.csv")["weight"]) == {1.0}  # --ft-layers last: one layer, weight 1
