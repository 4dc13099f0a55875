"""The real (packaged) Whisper tiny.en checkpoint on the synthetic suite."""

import pandas as pd
import pytest

from speechprobe.config import RunConfig
from speechprobe.pipeline import run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def accent_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("real-accent")
    cfg = RunConfig.of(
        models=["whisper-tiny.en"],
        tasks=["accent"],
        out=out,
        baselines=[],
        probes=["knn", "linear"],
        window="trimmed",
        n_per_class=12,
        folds=4,
        progress=False,
        permutations=0,
        embeddings=False,
        report=False,
    )
    return run(cfg), out


def test_accent_is_learnable_well_above_chance_from_some_layer(accent_run):
    results, _ = accent_run
    f1 = results[results.metric == "macro_f1"].groupby(["layer", "probe"])["value"].mean()
    assert f1.max() > 0.45  # 5 accents: chance 0.2
    assert sorted(results["layer"].unique()) == [0, 1, 2, 3, 4]


def test_real_weights_are_identified_in_the_manifest(accent_run):
    import json

    _, out = accent_run
    manifest = json.loads((out / "manifest.json").read_text())
    info = manifest["models"]["whisper-tiny.en"]
    assert info["num_layers"] == 5 and info["hidden_size"] == 384
    assert info["revision"].startswith("sha256:")
    assert manifest["tasks"]["accent"]["grouped_folds"] is True
    clips = pd.read_csv(out / "clips" / "accent.csv")
    assert len(clips) == 60 and clips["group"].nunique() >= 4
