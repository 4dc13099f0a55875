"""ARCHITECTURE.md's recipes for zero-shot, as tests.

A mode: a toy mode declared in a module outside speechprobe (one ``register`` call, no file of src/ edited) is
accepted by --mode, its rows land in the run directory and the report's zero-shot section lists it. An option:
one more field of the configuration reaches the backend's constructor, with no other place to edit."""

from __future__ import annotations

import dataclasses
import importlib
import json
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

from speechprobe.cli.output import print_best
from speechprobe.config import RunConfig
from speechprobe.pipeline import run, run_zeroshot_stage
from speechprobe.report import build_report
from speechprobe.zeroshot import ZeroShotConfig, run_zeroshot
from speechprobe.zeroshot import modes as modes_mod
from speechprobe.zeroshot.whisper import WhisperBackend

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")

PLUGIN = """
from speechprobe.zeroshot.modes import Mode, register

# the label the decoder finds least likely: a toy whose predictions are easy to check
register(Mode("toy_least_likely", "likelihood", lambda e: -e.raw, help="the least likely label"))
"""


@pytest.fixture
def toy_mode(tmp_path, monkeypatch):
    """The plugin module imported from a temporary folder; the registry restored afterwards."""
    monkeypatch.setattr(modes_mod, "_MODES", dict(modes_mod._MODES))
    (tmp_path / "plugin").mkdir()
    (tmp_path / "plugin" / "toy_zeroshot_mode.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path / "plugin"))
    sys.modules.pop("toy_zeroshot_mode", None)
    importlib.import_module("toy_zeroshot_mode")
    yield "toy_least_likely"
    sys.modules.pop("toy_zeroshot_mode", None)


def test_a_plugin_mode_runs_end_to_end(tmp_path, tiny_whisper_dec, toy_mode, capsys):
    out = tmp_path / "run"
    common = dict(models=[str(tiny_whisper_dec)], tasks=["spoken_word"], out=out, n_per_class=2, window="trimmed")
    common["cache"] = tmp_path / "cache"
    off = dict.fromkeys(("embeddings", "cue_probes", "layer_weights", "fingerprints", "similarity", "mdl"), False)
    run(
        RunConfig.of(
            **common, **off, baselines=[], folds=2, probes=["knn"], permutations=0, bootstrap=0, progress=False
        )
    )
    zs = ZeroShotConfig(**common, prompts=["choose"], modes=["likelihood_raw", toy_mode], progress=False)
    zs.validate()  # accepted by --mode
    run_zeroshot_stage(zs)
    build_report(out)

    results = pd.read_csv(out / "results.csv")
    assert set(results.loc[results["probe"].str.startswith("zeroshot:"), "probe"]) == {
        "zeroshot:likelihood_raw:choose",
        f"zeroshot:{toy_mode}:choose",
    }
    responses = pd.read_csv(out / "zeroshot" / tiny_whisper_dec.name / "spoken_word.csv")
    raw = responses[responses["mode"] == "likelihood_raw"].set_index("id")
    toy = responses[responses["mode"] == toy_mode].set_index("id").loc[raw.index]
    assert len(toy) == 16
    least = [min(s, key=s.get) for s in raw["scores"].map(json.loads)]  # the toy's prediction, from the raw scores
    assert list(toy["prediction"]) == least
    for r, t in zip(raw["scores"].map(json.loads), toy["scores"].map(json.loads)):
        np.testing.assert_allclose([t[k] for k in r], [-v for v in r.values()], atol=2e-6)
    described = json.loads((out / "manifest.json").read_text())["zeroshot"]["modes"]
    assert described == {"likelihood_raw": "summed log-probability", toy_mode: "the least likely label"}
    diagnostics = pd.read_csv(out / "zeroshot_diagnostics.csv")
    assert set(diagnostics["mode"]) == {"likelihood_raw", toy_mode}
    # the best-layer table of `run --zeroshot` shows the default zero-shot score (here the raw likelihood's)
    capsys.readouterr()
    print_best(out)
    console = capsys.readouterr().out
    f1 = results.set_index(["probe", "metric"]).loc[("zeroshot:likelihood_raw:choose", "macro_f1"), "value"]
    assert "zero-shot Macro-F1 (default mode)" in console and f"{f1:.3f} (likelihood_raw" in console
    section = (out / "report.md").read_text().split("### Zero-shot answers", 1)[1].split("###", 1)[0]
    shown = toy_mode.replace("_", "\\_")  # Markdown escapes underscores
    assert f"| {shown} | choose |" in section and "| likelihood\\_raw | choose |" in section


def test_a_new_option_is_one_field(tmp_path, tiny_whisper_dec, monkeypatch):
    # one more field, as a field added to BackendOptions (which ZeroShotConfig extends) would be
    config = dataclasses.make_dataclass(
        "WithStyle", [("answer_style", str, dataclasses.field(default="plain", kw_only=True))], bases=(ZeroShotConfig,)
    )
    seen = []
    build = WhisperBackend.__init__

    def spy(self, model, tokenizer, processor, checkpoint, fingerprint, options):
        seen.append((checkpoint.name, options.answer_style, options.prompt_as))
        build(self, model, tokenizer, processor, checkpoint, fingerprint, options)

    monkeypatch.setattr(WhisperBackend, "__init__", spy)
    cfg = config(
        models=[str(tiny_whisper_dec)],
        tasks=["spoken_word"],
        out=tmp_path / "run",
        n_per_class=1,
        prompts=["choose"],
        modes=["likelihood"],
        window="trimmed",
        cache=tmp_path / "cache",
        progress=False,
        answer_style="terse",
        prompt_as="previous",
    )
    rows = run_zeroshot(cfg)
    assert seen == [(tiny_whisper_dec.name, "terse", "previous")]  # the option reached the constructor, whole
    assert set(rows["probe"]) == {"zeroshot:likelihood:choose"}
