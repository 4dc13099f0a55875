import numpy as np
import pytest
import soundfile as sf

from speechprobe.data.audio import read, resample, validate
from speechprobe.data.manifest import ManifestSource
from speechprobe.errors import AudioError, SpeechprobeError


def test_stereo_is_mixed_down_and_resampled(tmp_path):
    t = np.arange(44100) / 44100
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.zeros_like(t)], axis=1).astype(np.float32)
    sf.write(tmp_path / "s.flac", stereo, 44100)
    decoded = read(tmp_path / "s.flac")
    y, sr = decoded.audio, decoded.sample_rate
    assert sr == 44100 and y.ndim == 1
    assert np.abs(y).max() == pytest.approx(0.5, abs=1e-3)
    z = resample(y, sr, 16000)
    assert len(z) == 16000 and z.dtype == np.float32


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: None, "missing file"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("hello, not audio"), "not decodable"),
        (lambda p: p.mkdir(), "directory"),
    ],
)
def test_bad_files_name_the_path(tmp_path, make, reason):
    p = tmp_path / "bad.wav"
    make(p)
    with pytest.raises(AudioError, match=reason) as e:
        read(p)
    assert "bad.wav" in str(e.value)


def test_nan_and_empty_audio_rejected():
    with pytest.raises(AudioError, match="NaN/Inf"):
        validate(np.array([0.0, np.nan, np.inf], np.float32), "x.wav")
    with pytest.raises(AudioError, match="no audio"):
        validate(np.zeros(0, np.float32), "x.wav")


def test_manifest_reads_clips_and_skips_bad_rows(tones):
    root = tones.parent
    sf.write(root / "nan.wav", np.array([0.1, np.nan] * 800, np.float32), 16000, subtype="FLOAT")
    with open(tones, "a") as f:
        f.write("nope.wav,low,spk0\nnan.wav,mid,spk1\n")
    src = ManifestSource(tones)
    clips = list(src)
    assert len(clips) == 24 and {c.label for c in clips} == {"low", "mid", "high"}
    assert all(c.group.startswith("spk") for c in clips)
    reasons = {s.item.split(" (")[0]: s.reason for s in src.skipped}
    assert "missing file" in reasons["manifest.csv row 26"]
    assert "NaN/Inf" in reasons["manifest.csv row 27"]
    assert src.has_groups and len(src.fingerprint()) == 64


def test_manifest_missing_columns(tmp_path):
    (tmp_path / "m.csv").write_text("file,emotion\na.wav,happy\n")
    with pytest.raises(SpeechprobeError, match="lacks column\\(s\\) path, label"):
        ManifestSource(tmp_path / "m.csv")


def test_a_manifest_task_is_named_after_its_folder_or_by_name(tones, tmp_path):
    from speechprobe.data.resolve import open_task

    assert open_task(str(tones), tmp_path)[0].name == "tones"  # tones/manifest.csv: its folder's name
    task, source = open_task(f"accent_v2={tones}", tmp_path)
    assert (task.name, source.task) == ("accent_v2", "accent_v2")
    named = tones.with_name("clips.csv")
    named.write_bytes(tones.read_bytes())
    assert open_task(str(named), tmp_path)[0].name == "clips"  # any other file: its own name
