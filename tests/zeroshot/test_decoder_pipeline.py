"""Probes, then the zero-shot stage with decoder states: the decoder_layers analysis runs after it, the link gets
its decoder sides and the report its section; the decoder states are probed as the model `<model>:decoder@choose`
(results, summary, bootstrap, the selection-aware test, the report's tables); a rerun computes nothing (a tiny
Whisper with a decoder, the synthetic gender task)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from speechprobe.config import RunConfig
from speechprobe.decoder_stage import zeroshot_with_decoder_models
from speechprobe.pipeline import load_extracted, probe_and_report, run
from speechprobe.report import build_report
from speechprobe.report.compare import compare_runs
from speechprobe.rundir import read_results
from speechprobe.zeroshot import ZeroShotConfig

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")]


def test_run_then_zero_shot_with_decoder_states(tmp_path, tiny_whisper_dec, caplog):
    common = dict(models=[str(tiny_whisper_dec)], tasks=["gender"], out=tmp_path / "run", window="trimmed")
    common.update(cache=tmp_path / "cache", n_per_class=6)
    off = dict(permutations=19, bootstrap=50, embeddings=False, cue_probes=False, layer_weights=False)
    off.update(fingerprints=False, similarity=False, mdl=False, report=False, progress=False)
    run(RunConfig.of(**common, baselines=[], folds=2, probes=["knn"], **off))
    zs = ZeroShotConfig(
        **common, prompts=["choose"], modes=["likelihood_bc", "likelihood_pm"], decoder_states=True, progress=False
    )
    zeroshot_with_decoder_models(zs)
    out = common["out"]
    table = pd.read_csv(out / "decoder_layers.csv")
    model = tiny_whisper_dec.name
    enc = table[table["side"] == "encoder_probe"]
    dec = table[table["side"] == "decoder_probe:last"]
    assert len(enc) >= 2 and list(dec["depth"]) == list(range(len(enc), len(enc) + len(dec)))
    assert set(table["side"]) == {"encoder_probe", "decoder_probe:last", "lens", "lens_bc"}
    assert (table["model"] == model).all() and table["macro_f1"].between(0, 1).all()
    assert (out / "figures" / f"decoder_layers_{model}_gender.png").stat().st_size > 1000
    pairs = pd.read_csv(out / "zeroshot_vs_probe.csv")
    assert {"default · decoder-state probe", "default · logit lens"} <= set(pairs["selection"])
    build_report(out)
    page = (out / "report.html").read_text()
    assert "Inside the decoder" in page and f"spec-a-decoder_layers_{model}_gender" in page  # drawn interactively
    done = json.loads((out / "analysis.json").read_text())
    assert "decoder_layers" in json.dumps(done)
    _check_decoder_model(out, model, table, common, zs, caplog)


def _check_decoder_model(out, model, table, common, zs, caplog):
    name = f"{model}:decoder@choose"
    results = read_results(out / "results.csv")
    rows = results[results["model"] == name]
    assert sorted(rows["layer"].unique()) == [0, 1]  # the token embeddings, then the tiny decoder's one layer
    assert set(rows["task"]) == {"gender"} and set(rows["probe"]) == {"knn", "kmeans"}
    assert len(rows[(rows["metric"] == "macro_f1") & (rows["probe"] == "knn")]) == 2 * 2  # 2 layers x 2 folds
    enc = results[(results["model"] == model) & ~results["probe"].str.startswith("zeroshot:")]
    keys = ["layer", "probe", "fold", "metric"]  # the same rows as the encoder's (its 2 layers), other values
    assert sorted(enc[keys].to_csv(index=False).splitlines()) == sorted(rows[keys].to_csv(index=False).splitlines())
    assert not results[results["probe"].str.startswith("zeroshot:")].empty  # the zero-shot rows are kept
    # the same probe and folds as the decoder_layers analysis's decoder-state curve: the same numbers
    curve = table[table["side"] == "decoder_probe:last"].sort_values("depth")["macro_f1"].to_numpy()
    means = rows[rows["metric"] == "macro_f1"].groupby("layer")["value"].mean().to_numpy()
    assert np.allclose(curve, means)
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary.loc[summary["model"] == name, "layer"].dropna()) == {0, 1}
    manifest = json.loads((out / "manifest.json").read_text())
    entry = manifest["models"][name]
    assert entry["num_layers"] == 2 and entry["decoder"] == {"model": model, "prompt_id": "choose", "rule": "last"}
    assert set(pd.read_csv(out / "bootstrap.csv")["model"]) == {model, name}
    perm = pd.read_csv(out / "permutation.csv")
    assert set(perm["model"]) == {model, name} and perm["p_value"].between(0.05, 1).all()  # 20 shuffles: p >= 1/20
    build_report(out)
    assert name in set(pd.read_csv(out / "main_table.csv")["model"])  # the report's best-layer table
    compare_runs([out, out], out.parent / "cmp")
    assert name in set(pd.read_csv(out.parent / "cmp" / "compare.csv")["model"])
    before = {p: p.stat().st_mtime_ns for p in [*(out / "partial").iterdir(), *(out / "predictions").iterdir()]}
    results_bytes = (out / "results.csv").read_bytes()
    zeroshot_with_decoder_models(zs)  # a rerun: nothing probed again, the same rows
    assert {p: p.stat().st_mtime_ns for p in before} == before and len(list((out / "partial").iterdir())) == 2
    assert (out / "results.csv").read_bytes() == results_bytes
    with caplog.at_level("WARNING", logger="speechprobe"):
        probe_and_report(*load_extracted(out))  # the probe stage alone again: its rows only, and it says what went
    assert name not in set(read_results(out / "results.csv")["model"])
    (warning,) = [m for m in caplog.messages if name in m]
    assert "run it again with --decoder-states" in warning
    zeroshot_with_decoder_models(zs)  # as the warning says: the rows are back, from partial/
    assert (out / "results.csv").read_bytes() == results_bytes
