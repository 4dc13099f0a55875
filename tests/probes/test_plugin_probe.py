"""The probe recipe: a third-party probe (nearest centroid) from a temporary plugin package, registered through
the ``speechprobe.probes`` entry point group (no edit of src/), run end to end from the command line (with
--tune on its own grid)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from speechprobe import plugins
from speechprobe.errors import ConfigError, SpeechprobeError
from speechprobe.probes import KNNProbe, ProbeSpec, make_probe, probe_names, registry

PLUGIN = '''
from sklearn.neighbors import NearestCentroid

from speechprobe.probes import ProbeSpec, ScaledProbe


class CentroidProbe(ScaledProbe):
    """Nearest class mean on standardised features."""

    def __init__(self, shrink_threshold=None):
        self.shrink_threshold = shrink_threshold

    def _classifier(self):
        return NearestCentroid(shrink_threshold=self.shrink_threshold)


CENTROID = ProbeSpec("centroid", CentroidProbe, grid={"shrink_threshold": [None, 0.5]})
'''


@pytest.fixture
def plugin_path(tmp_path):
    """A folder holding the plugin module and its installed-package metadata with the entry point."""
    root = tmp_path / "plugin"
    info = root / "toy_centroid-0.1.dist-info"
    info.mkdir(parents=True)
    (root / "toy_centroid.py").write_text(PLUGIN)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-centroid\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[speechprobe.probes]\ncentroid = toy_centroid:CENTROID\n")
    return root


def cli(plugin_path, *args: str) -> subprocess.CompletedProcess:
    path = os.pathsep.join(p for p in (str(plugin_path), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run(
        [sys.executable, "-m", "speechprobe.cli", *args], capture_output=True, text=True, timeout=600, env=env
    )


def test_a_plugin_probe_runs_end_to_end(plugin_path, tones, tmp_path):
    out = tmp_path / "run"
    bad = cli(plugin_path, "run", "--baselines-only", "--tasks", str(tones), "--probes", "svm", "--out", str(out))
    assert bad.returncode == 2 and "--probes svm: choose from knn, mlp, linear, centroid" in bad.stderr
    args = ["run", "--baselines-only", "--baselines", "mfcc", "--tasks", str(tones), "--out", str(out)]
    args += ["--probes", "knn,centroid", "--tune", "--folds", "3", "--permutations", "0", "--bootstrap", "0"]
    args += ["--no-embeddings", "--no-cue-probes", "--no-mdl", "--no-similarity", "--no-layer-weights"]
    r = cli(plugin_path, *args)
    assert r.returncode == 0, r.stderr[-2000:]
    results = pd.read_csv(out / "results.csv")
    f1 = results[results.metric == "macro_f1"].groupby("probe")["value"].mean()
    assert set(results.probe) == {"knn", "centroid", "kmeans"} and set(f1.index) == {"knn", "centroid"}
    assert len(results[(results.probe == "centroid") & (results.metric == "macro_f1")]) == 3  # one layer x 3 folds
    assert f1["centroid"] > 0.9  # MFCCs separate the three pitches: the class means do too
    tune = json.loads((out / "manifest.json").read_text())["probe_settings"]["tune"]
    assert tune["on"] and tune["grids"]["centroid"] == {"shrink_threshold": [None, 0.5]}  # its own grid, tuned
    assert f"| mfcc | tones | centroid | 0 | {f1['centroid']:.3f} |" in (out / "report.md").read_text()  # its row


def test_register_adds_a_probe_and_bad_specs_fail_with_one_line(monkeypatch):
    monkeypatch.setattr(registry, "_PROBES", dict(zip(probe_names(), map(registry.probe_spec, probe_names()))))
    wide = registry.register(ProbeSpec("knn15", KNNProbe, grid={"n_neighbors": [15]}, train_bound="n_neighbors"))
    assert probe_names()[-1] == "knn15" and registry.probe_spec("knn15") is wide
    assert make_probe("knn15").n_neighbors == 5  # no setting declared: the estimator's own default
    with pytest.raises(SpeechprobeError, match="probe 'bad': no parameter 'k'; no ProbeSettings field 'knn_kk'"):
        ProbeSpec("bad", KNNProbe, settings={"k": "knn_kk"})
    with pytest.raises(SpeechprobeError, match="probe 'bad': no parameter 'random_state'"):
        ProbeSpec("bad", KNNProbe, deterministic=False)
    with pytest.raises(SpeechprobeError, match="null 'cheap' is not refit or revote"):
        ProbeSpec("bad", KNNProbe, null="cheap")
    with pytest.raises(ConfigError, match="unknown probe 'svm'; choose from knn, mlp, linear, knn15"):
        make_probe("svm")


def test_an_installed_probe_plugin_registers_through_its_entry_point(monkeypatch):
    class EntryPoint:
        name, value = "wide", "wide_plugin:WIDE"

        def load(self):
            return [ProbeSpec("wide", KNNProbe, settings={"n_neighbors": "knn_k"})]

    monkeypatch.setattr(registry, "_PROBES", dict(registry._PROBES))
    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.setattr(plugins, "entry_points", lambda group: [EntryPoint()] if group == "speechprobe.probes" else [])
    assert probe_names() == ("knn", "mlp", "linear", "wide")
