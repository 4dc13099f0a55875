"""resemblyzer: the real GE2E weights from the package, offline; layers, exactness and speaker separation."""

import importlib.util
import io
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest
import soundfile as sf

from speechprobe.data.audio import resample
from speechprobe.models.registry import checkpoints, load_model

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("resemblyzer") is None,
    reason="needs the speaker extra (pip install 'speechprobe[speaker]')",
)
VOICES = ["en-us+m1", "en-us+m3", "en-us+f1", "en-us+f3"]
SENTENCES = [
    "Please call Stella.",
    "She sells sea shells.",
    "We meet at nine tomorrow.",
    "The dog sleeps all day.",
]


def without_vad(**request):
    """The registry's resemblyzer with webrtcvad's silence trimming off (as if webrtcvad did not work)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("speechprobe.models.resemblyzer.vad_trimmer", lambda: None)
        return load_model("resemblyzer", **request)


@pytest.fixture(scope="module")
def adapter():
    return without_vad()


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(0)
    t = np.arange(40000) / 16000
    tone = (0.2 * np.sin(2 * np.pi * 180 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    return [tone, tone[:9000], (0.05 * rng.standard_normal(30000)).astype(np.float32), tone[:100]]


@pytest.fixture(scope="module")
def speech():
    """Each sentence in each eSpeak NG voice: (audio, voice index, sentence index)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    out = []
    for v, voice in enumerate(VOICES):
        for s, text in enumerate(SENTENCES):
            wav = subprocess.run(["espeak-ng", "-v", voice, "--stdout", text], capture_output=True, check=True).stdout
            audio, sr = sf.read(io.BytesIO(wav), dtype="float32")
            out.append((resample(audio, sr, 16000), v, s))
    return out


def test_real_weights_load_offline_with_four_layers(adapter):
    a = load_model("resemblyzer")  # the registry's short name (packaged)
    spec = checkpoints()["resemblyzer"]
    assert spec.packaged and spec.num_layers == 4
    assert a.num_layers == 4 and a.info.hidden_size == 256 and a.sample_rate == 16000
    assert a.info.source == "package:resemblyzer" and a.info.revision.startswith("sha256:")
    assert "vad" in a.options() and adapter.options()["vad"] is False


@pytest.mark.slow
def test_embedding_layer_is_resemblyzers_own(adapter, clips, monkeypatch):
    """Layer 3 (mean) equals ``VoiceEncoder.embed_utterance`` on the volume-normalised clip.

    resemblyzer imports webrtcvad on import; a stub stands in for it here (its VAD is not used).
    """
    monkeypatch.setitem(sys.modules, "webrtcvad", types.ModuleType("webrtcvad"))
    for name in [m for m in sys.modules if m == "resemblyzer" or m.startswith("resemblyzer.")]:
        monkeypatch.delitem(sys.modules, name)
    from resemblyzer import VoiceEncoder
    from resemblyzer.audio import normalize_volume

    encoder = VoiceEncoder(device="cpu", verbose=False)
    for clip in clips[:2]:
        ours = adapter.forward([clip])[0]
        np.testing.assert_allclose(
            ours[3], encoder.embed_utterance(normalize_volume(clip, -30, increase_only=True)), atol=1e-5
        )
    for name in [m for m in sys.modules if m == "resemblyzer" or m.startswith("resemblyzer.")]:
        monkeypatch.delitem(sys.modules, name)


@pytest.mark.slow
def test_batched_equals_one_at_a_time(adapter, clips):
    batched = adapter.forward(clips, "mean+std")
    single = np.concatenate([adapter.forward([c], "mean+std") for c in clips])
    assert batched.shape == (4, 4, 512) and np.isfinite(batched).all()
    np.testing.assert_allclose(batched, single, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batched[:, 3, :256], axis=-1), 1.0, rtol=1e-5)  # L2-normed embedding


@pytest.mark.slow
def test_random_init_is_named_and_differs(adapter, clips):
    rand = without_vad(random_init=True, seed=2)
    assert rand.name == "resemblyzer+random" and rand.info.revision.startswith("random:seed2")
    assert not np.allclose(adapter.forward(clips[:1]), rand.forward(clips[:1]))


@pytest.mark.slow
def test_embedding_separates_voices_far_above_chance(adapter, speech):
    """Speaker identity from held-out sentences (GroupKFold by sentence), 1-NN on cosine distance.

    Chance is 1/4. Measured: 1.0 on every layer with the real weights. The random-init control also
    separates eSpeak NG voices in its LSTM layers (0.75 / 0.69 / 0.56: the voices differ grossly in
    pitch and formants), but not at its embedding (0.25, chance).
    """
    from sklearn.model_selection import GroupKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    audio, voice, sentence = zip(*speech)
    voice, sentence = np.array(voice), np.array(sentence)

    def accuracy(features):
        knn = KNeighborsClassifier(1, metric="cosine")
        return cross_val_score(knn, features, voice, groups=sentence, cv=GroupKFold(len(SENTENCES))).mean()

    real = adapter.forward(list(audio))
    random = without_vad(random_init=True).forward(list(audio))
    assert min(accuracy(real[:, layer]) for layer in range(4)) >= 0.9
    assert accuracy(real[:, 3]) > accuracy(random[:, 3]) + 0.3
