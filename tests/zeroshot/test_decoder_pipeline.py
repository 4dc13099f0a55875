"""Probes, then the zero-shot stage with decoder states: the decoder_layers analysis runs after it, the link gets
its decoder sides and the report its section (a tiny Whisper with a decoder, the synthetic gender task)."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from speechprobe.config import RunConfig
from speechprobe.pipeline import run, run_zeroshot_stage
from speechprobe.report import build_report
from speechprobe.zeroshot import ZeroShotConfig

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")]


def test_run_then_zero_shot_with_decoder_states(tmp_path, tiny_whisper_dec):
    common = dict(models=[str(tiny_whisper_dec)], tasks=["gender"], out=tmp_path / "run", window="trimmed")
    common.update(cache=tmp_path / "cache", n_per_class=6)
    off = dict(permutations=0, bootstrap=0, embeddings=False, cue_probes=False, layer_weights=False)
    off.update(fingerprints=False, similarity=False, mdl=False, report=False, progress=False)
    run(RunConfig.of(**common, baselines=[], folds=2, probes=["knn"], **off))
    zs = ZeroShotConfig(
        **common, prompts=["choose"], modes=["likelihood_bc", "likelihood_pm"], decoder_states=True, progress=False
    )
    run_zeroshot_stage(zs)
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
    assert "Inside the decoder" in page and f"spec-decoder_layers_{model}_gender" in page  # drawn interactively
    done = json.loads((out / "analysis.json").read_text())
    assert "decoder_layers" in json.dumps(done)
