"""The eSpeak NG synthetic suite: determinism, caching, manifests, cues and learnability."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from speechprobe.data.registry import registered_tasks
from speechprobe.data.synthetic import (
    DEFAULT_N_PER_CLASS,
    EXTENDED_TASKS,
    SYNTHETIC_TASKS,
    effects,
    espeak,
    generate_task,
)
from speechprobe.data.synthetic.suite import (
    _GENERATORS,
    BASE_AMPLITUDE,
    CORE_VOICES,
    FEMALE,
    MALE,
    SENTENCES,
    VOICES,
    emphasised,
)
from speechprobe.errors import ConfigError, SpeechprobeError

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")

ALL_TASKS = SYNTHETIC_TASKS + EXTENDED_TASKS
TINY = 2


def audio_hashes(manifest: Path) -> list[str]:
    """sha256 of each clip's PCM data, in manifest order."""
    frame = pd.read_csv(manifest)
    return [hashlib.sha256(sf.read(manifest.parent / p, dtype="int16")[0].tobytes()).hexdigest() for p in frame["path"]]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("suite")
    return {name: generate_task(name, root / name, n_per_class=TINY, seed=0) for name in ALL_TASKS}


def test_registry_has_every_synthetic_task():
    tasks = registered_tasks()
    assert SYNTHETIC_TASKS[:3] == ("accent", "emotion", "stress")
    for name in ALL_TASKS:
        task = tasks[name]
        assert task.source == "synthetic" and task.group_column == "group"
        assert len(task.cue) > 40 and len(task.labels) >= 2
        assert DEFAULT_N_PER_CLASS[name] >= 10
    assert tasks["speaker_count"].labels == ("1", "2", "3", "4")
    assert tasks["speaker_count_ext"].labels == ("1", "2", "3", "4", "5")
    assert not tasks["dialogue_act"].paralinguistic and tasks["emotion"].paralinguistic


@pytest.mark.parametrize("name", ALL_TASKS)
def test_manifest_contract(tiny, name):
    manifest = tiny[name]
    frame = pd.read_csv(manifest, dtype=str)
    assert list(frame.columns) == ["path", "label", "group", "text"]
    task = registered_tasks()[name]
    counts = frame["label"].value_counts()
    assert set(counts.index) == set(task.labels)
    assert (counts == TINY).all(), "classes are balanced"
    assert (frame.groupby("label")["group"].nunique() >= 2).all(), "no label is a single group"
    for path in frame["path"]:
        info = sf.info(manifest.parent / path)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert 0.8 <= info.duration <= 4.5
        audio, _ = sf.read(manifest.parent / path)
        assert np.abs(audio).max() > 0.02, "not silent"


def test_groups_follow_the_datasheet(tiny):
    voices = set(MALE + FEMALE)
    for name in ("accent", "emotion", "emphasis", "gender", "distance", "dialogue_act", "spoof"):
        groups = set(pd.read_csv(tiny[name], dtype=str)["group"])
        if name == "accent":
            assert groups <= {v.partition("+")[2] for v in VOICES}
        else:
            assert groups <= voices
    speaker_id = pd.read_csv(tiny["speaker_id"], dtype=str)
    assert set(speaker_id["label"]) == set(CORE_VOICES)
    assert set(speaker_id["group"]) == {"s00", "s01"}, "speaker_id groups are sessions"


@pytest.mark.parametrize("name", ["accent", "emotion", "emphasis", "gender", "distance", "spoof"])
def test_crossed_tasks_use_every_voice_in_every_class(name):
    """24 voices (12 male, 12 female): a grouped test fold holds several speakers, not one or two."""
    items = _GENERATORS[name](len(VOICES), np.random.default_rng(0))
    by_label = pd.DataFrame([(i.label, i.group) for i in items], columns=["label", "group"]).groupby("label")
    assert len(VOICES) == 24 and len(MALE) == len(FEMALE) == 12
    assert set(by_label["group"].nunique()) == {12 if name == "gender" else 24}


@pytest.mark.parametrize("name", ALL_TASKS)
def test_seed_determines_audio(tiny, tmp_path, name):
    again = generate_task(name, tmp_path / "again", n_per_class=TINY, seed=0)
    other = generate_task(name, tmp_path / "other", n_per_class=TINY, seed=1)
    assert audio_hashes(again) == audio_hashes(tiny[name])
    assert audio_hashes(other) != audio_hashes(tiny[name])


def test_cache_hit_and_invalidation(tmp_path):
    out = tmp_path / "gender"
    manifest = generate_task("gender", out, n_per_class=TINY, seed=3)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert generate_task("gender", out, n_per_class=TINY, seed=3) == manifest
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps
    assert json.loads((out / "params.json").read_text())["seed"] == 3

    generate_task("gender", out, n_per_class=TINY + 1, seed=3)
    assert len(pd.read_csv(manifest)) == 2 * (TINY + 1)
    assert len(list((out / "wav").glob("*.wav"))) == 2 * (TINY + 1)

    manifest.unlink()  # an interrupted run leaves no manifest: it is redone
    assert len(pd.read_csv(generate_task("gender", out, n_per_class=TINY, seed=3))) == 2 * TINY
    assert not list(out.glob("*.tmp"))


def swap_labels(manifest: Path) -> None:
    """Swap the labels of the first two rows with different labels: the file keeps its size."""
    frame = pd.read_csv(manifest)
    i = 0
    j = int(np.flatnonzero(frame["label"] != frame["label"][i])[0])
    frame.loc[[i, j], "label"] = frame.loc[[j, i], "label"].to_numpy()
    before = manifest.stat().st_size
    frame.to_csv(manifest, index=False, lineterminator="\n")
    assert manifest.stat().st_size == before


def test_a_label_swap_in_the_manifest_is_found_and_undone(tmp_path):
    from speechprobe.data.synthetic.generate import ensure_task

    manifest, _ = ensure_task("gender", tmp_path / "g", n_per_class=TINY)
    original = manifest.read_bytes()
    assert "manifest.csv" in json.loads((tmp_path / "g" / "checksums.json").read_text())
    swap_labels(manifest)
    assert manifest.read_bytes() != original
    again, repaired = ensure_task("gender", tmp_path / "g", n_per_class=TINY)
    assert again == manifest and repaired == ["manifest.csv"] and manifest.read_bytes() == original

    sums = json.loads((tmp_path / "g" / "checksums.json").read_text())  # a generation of an older speechprobe
    del sums["manifest.csv"]
    (tmp_path / "g" / "checksums.json").write_text(json.dumps(sums))
    swap_labels(manifest)
    assert ensure_task("gender", tmp_path / "g", n_per_class=TINY)[1] == ["manifest.csv"]
    assert manifest.read_bytes() == original and ensure_task("gender", tmp_path / "g", n_per_class=TINY)[1] == []


def test_bad_requests():
    with pytest.raises(ConfigError, match="gender"):
        generate_task("gendr", Path("unused"))
    with pytest.raises(ConfigError):
        generate_task("gender", Path("unused"), n_per_class=0)
    with pytest.raises(SpeechprobeError, match="variant"):
        espeak.synthesize("hello", "en-us+nobody")


def test_espeak_wrapper_and_voices_are_distinct():
    audio, sr = espeak.synthesize("Hello there, how are you?", "en-us+f3", rate=160, pitch=60)
    assert audio.dtype == np.float32 and audio.ndim == 1 and sr == 22050
    assert 0.5 < len(audio) / sr < 3.0 and np.abs(audio).max() <= 1.0
    renders = {espeak.synthesize("Hello there.", v)[0].tobytes() for v in MALE + FEMALE}
    assert len(renders) == len(MALE + FEMALE), "every voice (en-gb variants included) differs"
    slow, _ = espeak.synthesize("Hello there.", "en-us", rate=100)
    quiet, _ = espeak.synthesize("Hello there.", "en-us", amplitude=20)
    loud, _ = espeak.synthesize("Hello there.", "en-us", amplitude=80)
    assert len(slow) > len(loud) and effects.rms(loud) > 3 * effects.rms(quiet)


def test_emphasis_moves_the_loudest_word():
    """The SSML stress markup is honoured: the loudest region follows the stressed word."""
    for voice in ("en-us+m1", "en-gb+f4"):
        peaks = []
        for position in range(6):
            text = emphasised(SENTENCES[0], position)
            audio, _ = espeak.synthesize(text, voice, ssml=True, amplitude=BASE_AMPLITUDE)
            frames = np.lib.stride_tricks.sliding_window_view(audio, 2048)[::512]
            energy = np.convolve((frames**2).mean(1), np.ones(5), "same")
            peaks.append(int(np.argmax(energy)))
        assert peaks == sorted(peaks) and len(set(peaks)) == 6


def test_effects():
    rng = np.random.default_rng(0)
    sr = 16000
    speech = rng.standard_normal(sr).astype(np.float32) * np.repeat(rng.random(10) > 0.5, sr // 10)
    near, mid, far = (effects.at_distance(speech, sr, d, np.random.default_rng(1)) for d in (0.4, 2.0, 4.0))
    assert effects.rms(near) > effects.rms(mid) > effects.rms(far)
    assert len(far) == len(speech)
    assert len(np.unique(effects.mu_law(speech * 0.1, bits=4))) <= 16
    assert len(effects.resample(speech, sr, 8000)) == sr // 2
    mixed = effects.mix([speech, speech[: sr // 2]], [0, sr // 2], sr)
    assert mixed.shape == (sr,)
    assert effects.to_pcm16(np.array([2.0, -2.0, 0.5])).tolist() == [32767, -32767, 16384]


def _learnability(name: str, n: int, tmp_path: Path) -> float:
    """GroupKFold accuracy of logistic regression on MFCC mean/std."""
    manifest = generate_task(name, tmp_path / name, n_per_class=n, seed=0)
    frame = pd.read_csv(manifest, dtype=str)
    features = []
    for path in frame["path"]:
        audio, sr = sf.read(manifest.parent / path, dtype="float32")
        mfcc = librosa.feature.mfcc(y=audio, sr=sr, n_mfcc=20)
        features.append(np.concatenate([mfcc.mean(1), mfcc.std(1)]))
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    scores = cross_val_score(model, np.stack(features), frame["label"], groups=frame["group"], cv=GroupKFold(4))
    return float(scores.mean())


def test_gender_is_learnable(tmp_path):
    assert _learnability("gender", 8, tmp_path) >= 0.7  # chance 0.5


@pytest.mark.slow
def test_distance_is_learnable(tmp_path):
    assert _learnability("distance", 24, tmp_path) >= 0.5  # chance 0.33 (0.58 measured; one clip per voice and class)
