"""The Dynamic-SUPERB registry entries: ids, label sets, label maps, grouping, listing."""

from __future__ import annotations

import re

import pytest

from speechprobe.data.dynamic_superb import TASKS, answer_options
from speechprobe.data.registry import registered_tasks
from speechprobe.data.source import normalise_label

# The study's tasks as the issue lists them: registry name -> (HF id, label set)
STUDY = {
    "ds-accent": (
        "DynamicSuperb/AccentClassification_AccentdbExtended",
        {"american", "australian", "bangla", "british", "indian", "malayalam", "odiya", "telugu", "welsh"},
    ),
    "ds-emotion": (
        "DynamicSuperb/EmotionRecognition_MultimodalEmotionlinesDataset",
        {"anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"},
    ),
    "ds-dialogue-emotion": (
        "DynamicSuperb/DialogueEmotionClassification_DailyTalk",
        {"anger", "disgust", "fear", "sadness", "happiness", "surprise", "no emotion"},
    ),
    "ds-stress": ("DynamicSuperb/StressDetection_MIRSD", {"zero", "one", "two", "three", "four", "five"}),
    "ds-distance": ("DynamicSuperb/HowFarAreYou_3DSpeaker", {"0.4m", "2.0m", "4.0m"}),
    "ds-sarcasm": ("DynamicSuperb/SarcasmDetection_Mustard", {"true", "false"}),
    "ds-multi-speaker-librispeech": ("DynamicSuperb/MultiSpeakerDetection_LibriSpeech-TestClean", {"true", "false"}),
    "ds-multi-speaker-vctk": ("DynamicSuperb/MultiSpeakerDetection_VCTK", {"true", "false"}),
    "ds-speaker-count": ("DynamicSuperb/SpeakerCounting_LibriTTS-TestClean", {"one", "two", "three", "four", "five"}),
    "ds-dialogue-act": (
        "DynamicSuperb/DialogueActClassification_DailyTalk",
        {"question", "inform", "directive", "commissive"},
    ),
    "ds-spoof": ("DynamicSuperb/SpoofDetection_ASVspoof2017", {"spoofed", "authentic"}),
}


def test_every_study_task_is_registered():
    tasks = registered_tasks()
    for name, (hf_id, labels) in STUDY.items():
        t = tasks[name]
        assert t.source == hf_id and set(t.labels) == labels and len(t.labels) == len(labels)
        assert t.cue and t.audio_column == "audio" and t.label_column == "label" and t.id_column == "file"
        assert t.instruction_column == "instruction"
    assert {t.name for t in TASKS} == set(STUDY)
    assert [t.name for t in TASKS if not t.paralinguistic] == ["ds-dialogue-act"]
    assert "emotion" in tasks and "accent" in tasks  # the synthetic suite keeps its short names


def test_label_maps_land_in_the_label_set():
    for t in TASKS:
        assert set(t.label_map.values()) <= set(t.labels), t.name
        assert all(k == normalise_label(k) for k in t.label_map), t.name
    m = registered_tasks()["ds-distance"].label_map
    assert m["0.4 m"] == "0.4m" and m["2m"] == "2.0m" and m["4.0 meters"] == "4.0m"
    assert registered_tasks()["ds-stress"].label_map["0"] == "zero"
    assert registered_tasks()["ds-speaker-count"].label_map["5"] == "five"
    assert registered_tasks()["ds-dialogue-emotion"].label_map["neutral"] == "no emotion"
    assert registered_tasks()["ds-spoof"].label_map["bonafide"] == "authentic"


@pytest.mark.parametrize(
    "name, file, group",
    [
        ("ds-accent", "/data/accentdb/bangla/speaker_01/bangla_s01_321.wav", "bangla_s01"),
        ("ds-accent", "american_s02_117.wav", "american_s02"),
        ("ds-distance", "test/3D_SPK_08110/3D_SPK_08110_041_Device08_Distance13_Dialect12.wav", "3D_SPK_08110"),
        ("ds-dialogue-act", "10_0_d1080.wav", "d1080"),
        ("ds-dialogue-emotion", "3_1_d1159.wav", "d1159"),
        ("ds-emotion", "dia125_utt3.wav", "dia125"),
    ],
)
def test_group_patterns_read_speaker_or_session_from_file_names(name, file, group):
    m = re.search(registered_tasks()[name].group_pattern, file)
    assert m and m.group(1) == group


def test_answer_options():
    assert answer_options("Classify the act. The answer could be question, inform, directive, or commissive.") == [
        "question",
        "inform",
        "directive",
        "commissive",
    ]
    assert answer_options("Is it spoofed? The answer could be spoofed or authentic.") == ["spoofed", "authentic"]
    assert answer_options("How far? The answer could be 0.4m, 2.0m, or 4.0m.") == ["0.4m", "2.0m", "4.0m"]
    assert answer_options("No options here.") == [] and answer_options(None) == []


def test_cli_lists_dynamic_superb_tasks():
    from typer.testing import CliRunner

    from speechprobe.cli import app

    result = CliRunner().invoke(app, ["tasks"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    for name, (hf_id, _) in STUDY.items():
        assert name in result.output and hf_id in result.output
