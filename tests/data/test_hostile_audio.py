"""The hostile audio matrix: every case is processed correctly or skipped with a counted reason,
and the rest of the dataset is processed. The documented outcomes live in docs/reliability.md."""

import csv
import json
import os

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from speechprobe.config import RunConfig
from speechprobe.pipeline import run

pytestmark = pytest.mark.slow  # every test here is over ~2 s (pyproject's markers)

SR = 16000
rng = np.random.default_rng(0)


def tone(seconds: float = 1.0, sr: int = SR, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.standard_normal(len(t))
    return np.repeat(y[:, None], channels, axis=1) if channels > 1 else y


def write(path, y, sr=SR, **kw):
    sf.write(path, np.asarray(y, np.float32), sr, **kw)


# name -> (writer, expected outcome: "ok", "ok-truncated" or a substring of the skip reason)
CASES = {
    "zero_bytes.wav": (lambda p: p.write_bytes(b""), "empty file"),
    "truncated_header.wav": (lambda p: (write(p, tone()), p.write_bytes(p.read_bytes()[:30])), "not decodable"),
    "text.wav": (lambda p: p.write_text("this is not audio\n" * 50), "not decodable"),
    "flac_named.wav": (lambda p: write(p, tone(), format="FLAC"), "ok"),
    "pcm_u8.wav": (lambda p: write(p, tone(), subtype="PCM_U8"), "ok"),
    "pcm_24.wav": (lambda p: write(p, tone(), subtype="PCM_24"), "ok"),
    "float32.wav": (lambda p: write(p, tone(), subtype="FLOAT"), "ok"),
    "rate_8k.wav": (lambda p: write(p, tone(sr=8000), sr=8000), "ok"),
    "rate_48k.wav": (lambda p: write(p, tone(sr=48000), sr=48000), "ok"),
    "stereo.wav": (lambda p: write(p, tone(channels=2)), "ok"),
    "six_channel.wav": (lambda p: write(p, tone(channels=6)), "ok"),
    "tiny_10ms.wav": (lambda p: write(p, tone(0.01)), "ok"),
    "ten_minutes.flac": (lambda p: write(p, tone(600.0), format="FLAC"), "ok-truncated"),
    "silence.wav": (lambda p: write(p, np.zeros(SR)), "ok"),
    "dc_offset.wav": (lambda p: write(p, tone() * 0.5 + 0.4), "ok"),
    "clipping.wav": (lambda p: write(p, np.clip(tone() * 8, -1, 1)), "ok"),
    "nan.wav": (lambda p: write(p, np.where(np.arange(SR) % 100 == 0, np.nan, tone()), subtype="FLOAT"), "NaN/Inf"),
    "inf.wav": (lambda p: write(p, np.where(np.arange(SR) == 5, np.inf, tone()), subtype="FLOAT"), "NaN/Inf"),
    "audio.flac": (lambda p: write(p, tone(), format="FLAC"), "ok"),
    "audio.ogg": (lambda p: write(p, tone(), format="OGG", subtype="VORBIS"), "ok"),
    "audio.mp3": (lambda p: write(p, tone(), format="MP3"), "ok"),
    "ünïcödé clip ✓.wav": (lambda p: write(p, tone()), "ok"),
    "with space/in dir name.wav": (lambda p: (p.parent.mkdir(exist_ok=True), write(p, tone())), "ok"),
    "loop.wav": (lambda p: os.symlink(p.name, p), "unreadable"),
    "missing.wav": (lambda p: None, "missing file"),
}


@pytest.fixture(scope="module")
def matrix_run(tmp_path_factory, tiny_whisper):
    root = tmp_path_factory.mktemp("hostile")
    rows = []
    for name, (make, _) in CASES.items():
        make(root / name)
        rows.append((name, "hostile", f"g-hostile{len(rows)}"))  # one speaker each: a class needs 2+ to fold
    for i in range(12):  # the rest of the dataset: two learnable classes
        label = "ab"[i % 2]
        write(
            root / f"good{i}.wav",
            tone(1.0) * (1.0 if label == "a" else 0.2) + (0 if label == "a" else 0.1 * rng.standard_normal(SR)),
        )
        rows.append((f"good{i}.wav", label, f"g{i % 4}"))
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "group"])
        w.writerows(rows)
    out = root / "run"
    cfg = RunConfig.of(
        models=[str(tiny_whisper)],
        tasks=[f"manifest={root / 'manifest.csv'}"],  # NAME=path names the task
        out=out,
        folds=2,
        baselines=["mfcc"],
        probes=["knn"],
        window="trimmed",
        progress=False,
        permutations=0,
        embeddings=False,
        report=False,
        # the analyses read what extraction stored; what these tests check comes before them
        **dict.fromkeys(("cue_probes", "layer_weights", "fingerprints", "similarity", "mdl"), False),
        bootstrap=0,
    )
    run(cfg)
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_each_case_gets_its_documented_outcome(matrix_run, name):
    manifest = json.loads((matrix_run / "manifest.json").read_text())
    skipped = {s["item"].split(" (", 1)[1][:-1]: s["reason"] for s in manifest["skipped"]["items"]}
    clips = pd.read_csv(matrix_run / "clips" / "manifest.csv", keep_default_na=False)
    expected = CASES[name][1]
    if expected.startswith("ok"):
        assert name in set(clips["id"]), skipped.get(name)
        truncated = {i for v in manifest["truncated"].values() for i in v}
        assert (name in truncated) == (expected == "ok-truncated")
    else:
        assert name not in set(clips["id"])
        assert expected in skipped[name]


def test_the_rest_of_the_dataset_is_processed_with_finite_features(matrix_run):
    manifest = json.loads((matrix_run / "manifest.json").read_text())
    n_bad = sum(1 for _, e in CASES.values() if not e.startswith("ok"))
    assert manifest["skipped"]["count"] == n_bad
    assert manifest["tasks"]["manifest"]["n_clips"] == len(CASES) - n_bad + 12
    results = pd.read_csv(matrix_run / "results.csv")
    assert np.isfinite(results["value"]).all()
