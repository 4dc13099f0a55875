"""The Dynamic-SUPERB registry entries as the dataset cards state them: ids, label sets, dimensions, label maps,
groupings, listing."""

from __future__ import annotations

import re

import pytest

from ds_fixtures import DS_DIMENSIONS
from speechprobe.data.dynamic_superb import TASKS
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
        {"anger", "disgust", "fear", "sadness", "happiness", "surprise", "no_emotion"},  # the card's underscore
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
    "ds-spoof-2015": ("DynamicSuperb/SpoofDetection_ASVspoof2015", {"spoofed", "authentic"}),
}


def test_every_study_task_is_registered():
    tasks = registered_tasks()
    for name, (hf_id, labels) in STUDY.items():
        t = tasks[name]
        assert t.source == hf_id and set(t.labels) == labels and len(t.labels) == len(labels)
        assert t.cue and t.audio_column == "audio" and t.label_column == "label" and t.id_column == "file"
        assert t.instruction_column == "instruction"
    assert {t.name for t in TASKS} == set(STUDY)
    for dimension, names in DS_DIMENSIONS.items():
        assert {t.name for t in TASKS if t.dimension == dimension} == names
    assert {t.name for t in TASKS if t.paralinguistic} == DS_DIMENSIONS["paralinguistic"]
    assert "emotion" in tasks and "accent" in tasks  # the synthetic suite keeps its short names


def test_label_maps_land_in_the_label_set():
    for t in TASKS:
        assert set(t.label_map.values()) <= set(t.labels), t.name
        assert all(k == normalise_label(k) for k in t.label_map), t.name
    m = registered_tasks()["ds-distance"].label_map
    assert m["0.4 m"] == "0.4m" and m["2m"] == "2.0m" and m["4.0 meters"] == "4.0m"
    assert registered_tasks()["ds-stress"].label_map["0"] == "zero"
    assert registered_tasks()["ds-speaker-count"].label_map["5"] == "five"
    emotion = registered_tasks()["ds-dialogue-emotion"].label_map
    assert emotion["neutral"] == "no_emotion" and emotion["no emotion"] == "no_emotion"
    assert registered_tasks()["ds-sarcasm"].label_map["1.0"] == "true"  # a boolean column read as numbers
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
        ("ds-dialogue-act", "10_1_d1080.wav", "1"),  # --group-by speaker: DailyTalk's two actors
        ("ds-stress", "yifen/undesirable.wav", "yifen"),  # --group-by speaker: the reader
        ("ds-multi-speaker-librispeech", "1089-134686-0000", "1089"),  # the `utterance 1` column
        ("ds-multi-speaker-vctk", "p225_001.wav", "p225"),
        ("ds-speaker-count", "1089_134686_000001_000001", "1089"),
    ],
)
def test_group_patterns_read_speaker_or_session_from_file_names(name, file, group):
    task = registered_tasks()[name]
    kind = "speaker" if (name, group) in {("ds-dialogue-act", "1"), ("ds-stress", "yifen")} else task.group_by
    m = re.search(task.groupings[kind].pattern, file)
    assert m and m.group(1) == group


def test_stress_is_the_stressed_syllable_of_one_word_grouped_by_word():
    stress = registered_tasks()["ds-stress"]
    assert "stressed syllable in one English word" in stress.label_semantics and "syllable" in stress.cue
    assert "sentence" not in stress.cue and "word (" not in stress.display("one")
    assert stress.display("three") == "third syllable (three)" and stress.phrasings("two")[1] == "the second syllable"
    assert stress.group_by == "word" and stress.group_column == "word" and stress.group_pattern is None
    speaker = stress.grouped_by("speaker")
    assert speaker.group_column is None and speaker.group_pattern == r"^([^/]+)/"
    assert "syllable" in stress.question and "sentence" not in stress.question


def test_grouping_that_a_task_lacks_is_refused():
    from speechprobe.errors import ConfigError

    with pytest.raises(ConfigError, match="--group-by word: task ds-accent has no word grouping .it has speaker"):
        registered_tasks()["ds-accent"].grouped_by("word")
    assert registered_tasks()["ds-sarcasm"].group_source() == "none"  # the copy dropped the speaker columns


def test_paralinguistic_is_derived_from_the_dimension():
    from speechprobe.data.tasks import Task

    assert Task("t", ("a", "b"), True, "x", "cue").dimension == "paralinguistic"
    assert Task("t", ("a", "b"), False, "x", "cue").dimension == "unspecified"
    assert not Task("t", ("a", "b"), "speaker", "x", "cue").paralinguistic
    with pytest.raises(ValueError, match="dimension 'prosody' is not one of"):
        Task("t", ("a", "b"), "prosody", "x", "cue")
    synthetic = registered_tasks()
    assert synthetic["multi_speaker"].dimension == "speaker" and synthetic["dialogue_act"].dimension == "semantic"
    assert synthetic["emotion"].paralinguistic and synthetic["spoken_word"].dimension == "content"


def test_cli_lists_dynamic_superb_tasks():
    from typer.testing import CliRunner

    from speechprobe.cli import app

    result = CliRunner().invoke(app, ["tasks"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    for name, (hf_id, _) in STUDY.items():
        assert name in result.output and hf_id in result.output


def test_cli_details_show_dimension_meaning_groups_and_revision():
    from typer.testing import CliRunner

    from speechprobe.cli import app

    result = CliRunner().invoke(app, ["tasks", "--details"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    rows: dict[str, list[str]] = {}
    row: list[str] = []
    for line in result.output.splitlines():  # a table row may wrap over several lines: join its cells
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 8:
            row = rows.setdefault(cells[0], [""] * 8) if cells[0] else row
            row[:] = [f"{a} {b}".strip() for a, b in zip(row, cells)]
    stress = rows["ds-stress"]
    assert stress[2] == "paralinguistic" and stress[4].startswith("1-based position of the stressed syllable in one")
    assert stress[5] == "word (default): column `word`; speaker: the file name, pattern ^([^/]+)/"
    assert stress[6] == "not pinned" and rows["ds-sarcasm"][2] == "semantic" and rows["ds-sarcasm"][5] == "none"
    assert rows["ds-multi-speaker-vctk"][5] == "speaker (default): column `utterance 1`, pattern (p\\d{3}) if present"
    assert rows["ds-spoof-2015"][1].replace(" ", "") == "DynamicSuperb/SpoofDetection_ASVspoof2015"  # folded
