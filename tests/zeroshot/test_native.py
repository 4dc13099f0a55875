"""Which native head answers which task: labels mapped onto a head's targets, or why not."""

from __future__ import annotations

from speechprobe.data.registry import registered_tasks
from speechprobe.data.tasks import Task
from speechprobe.zeroshot.native import native_targets
from speechprobe.zeroshot.whisper import language_table

HEADS = {"language-id": language_table(["en", "de", "fr", "es", "pt"]), "no-speech": {}}


def _task(labels, **kw) -> Task:
    return Task("t", tuple(labels), False, "x", "cue", **kw)


def test_language_labels_map_through_the_language_table():
    found, why = native_targets(HEADS, registered_tasks()["language"])
    assert found == {"language-id": {"english": "en", "german": "de", "french": "fr", "spanish": "es"}}
    assert why == {"no-speech": "not a two-label speech / no-speech task"}
    codes, _ = native_targets(HEADS, _task(["en-029", "de", "pt_BR"]))
    assert codes["language-id"] == {"en-029": "en", "de": "de", "pt_BR": "pt"}
    named, _ = native_targets(HEADS, _task(["l1", "l2"], display_names={"l1": "Castilian", "l2": "French"}))
    assert named["language-id"] == {"l1": "es", "l2": "fr"}


def test_heads_that_cannot_tell_the_labels_apart_do_not_answer():
    found, why = native_targets(HEADS, registered_tasks()["accent"])  # five Englishes
    assert found == {} and why["language-id"] == "two labels map to the same language"
    found, why = native_targets(HEADS, _task(["english", "klingon"]))
    assert "language-id" not in found and "'klingon' is not a language" in why["language-id"]
    assert native_targets({}, registered_tasks()["language"]) == ({}, {})  # a model without heads


def test_speech_detection_labels():
    found, _ = native_targets(HEADS, _task(["speech", "non_speech"]))
    assert found["no-speech"] == {"speech": "speech", "non_speech": "no-speech"}
    found, _ = native_targets(HEADS, _task(["0", "1"], display_names={"0": "silence", "1": "voice"}))
    assert found["no-speech"] == {"0": "no-speech", "1": "speech"}
    found, why = native_targets(HEADS, registered_tasks()["multi_speaker"])
    assert "no-speech" not in found and why["no-speech"] == "the labels do not name speech and its absence"
