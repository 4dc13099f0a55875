"""The synthetic suite as the test of cue erasure: it finds the cues that were put there.

``gender`` is carried by the voices' F0 level (and formants), ``gender_pitchnorm`` is the same task with
every clip's median F0 moved to 160 Hz, and ``emotion`` is built from pitch profiles relative to each voice
(plus rate, loudness and pauses). Erasing absolute F0 must hurt gender far more than its pitch-normalised
control, and erasing speaker-relative F0 must hurt emotion far more than that control. Features: the
librosa baseline (it measures F0 among its 170 functionals), probed with the linear probe.
"""

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from speechprobe.analysis.cues import cue_targets
from speechprobe.analysis.erasure import erase_layers, group_columns
from speechprobe.data.synthetic import generate_task
from speechprobe.models.acoustic_cues import CUES, AcousticCuesAdapter, split_cues
from speechprobe.models.handcrafted import HandcraftedAdapter
from speechprobe.probes import make_folds

pytestmark = pytest.mark.slow  # every test here is over ~2 s (pyproject's markers)

pytest.importorskip("parselmouth")


@pytest.fixture(scope="module")
def deltas(tmp_path_factory) -> dict[str, dict[str, float]]:
    """Mean ΔMacro-F1 (linear probe, 5 grouped folds) per task and cue group."""
    root = tmp_path_factory.mktemp("suite")
    librosa_features, cue_adapter = HandcraftedAdapter("librosa"), AcousticCuesAdapter()
    out = {}
    for task in ("emotion", "gender", "gender_pitchnorm"):
        # 24 per class: every one of the 24 voices in every class, so F0 relative to the speaker is defined
        manifest = generate_task(task, root / task, n_per_class=24, seed=0)
        frame = pd.read_csv(manifest)
        audio = [sf.read(manifest.parent / p, dtype="float32")[0] for p in frame["path"]]
        groups, labels = frame["group"].to_numpy(), frame["label"].to_numpy()
        targets = cue_targets(split_cues(cue_adapter.forward(audio)), groups)
        if task == "gender_pitchnorm":  # the control really has one F0 level
            f0 = targets[:, CUES.index("f0_mean")]
            assert np.nanstd(f0) < 1.0 and abs(np.nanmean(f0) - 12 * np.log2(160 / 100)) < 1.0
        folds = make_folds(labels, groups, 5, 0)
        rows = pd.DataFrame(
            erase_layers(
                librosa_features.forward(audio), labels, targets, folds, group_columns(["f0", "f0_rel"]), "linear"
            )
        )
        out[task] = rows[rows.metric == "delta_macro_f1"].groupby("target")["value"].mean().to_dict()
    return out


def test_erasing_f0_hurts_gender_not_its_pitch_normalised_control(deltas):
    assert deltas["gender"]["f0"] < -0.3  # measured -0.38; the control +0.03
    assert deltas["gender_pitchnorm"]["f0"] > -0.2
    assert deltas["gender"]["f0"] < deltas["gender_pitchnorm"]["f0"] - 0.25


def test_erasing_speaker_relative_f0_hurts_emotion_not_the_control(deltas):
    assert deltas["emotion"]["f0_rel"] < -0.08  # measured -0.22; the control 0.00
    assert deltas["emotion"]["f0_rel"] < deltas["gender_pitchnorm"]["f0_rel"] - 0.1
    assert abs(deltas["gender"]["f0_rel"]) < 0.05  # within a voice, F0 says nothing about gender
