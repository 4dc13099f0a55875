"""Readable class names from the task datasheet's display map."""

from __future__ import annotations

from speechprobe.analysis.display import display_labels, display_map


def test_the_manifest_display_map_wins_and_unknown_labels_stay_themselves():
    names = display_map("accent", {"display_names": {"en-029": "Caribbean English"}})
    assert names == {"en-029": "Caribbean English"}
    assert display_labels(["en-029", "en-us"], names) == ["Caribbean English", "en-us"]


def test_an_unregistered_task_without_a_map_keeps_its_labels():
    assert display_map("no-such-task-anywhere") == {}
    assert display_labels([1, "b"], {}) == ["1", "b"]
