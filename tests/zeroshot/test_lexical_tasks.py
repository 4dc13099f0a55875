"""The lexical synthetic tasks (spoken_word, language): registered like the suite, balanced, grouped by
voice, deterministic."""

from __future__ import annotations

import shutil
from collections import Counter

import pytest

from speechprobe.data.registry import registered_tasks
from speechprobe.data.resolve import open_task
from speechprobe.data.synthetic import LEXICAL_TASKS, SYNTHETIC_TASKS

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


def test_registered_as_non_paralinguistic_synthetic_tasks():
    tasks = registered_tasks()
    assert LEXICAL_TASKS == ("spoken_word", "language") and not set(LEXICAL_TASKS) & set(SYNTHETIC_TASKS)
    assert tasks["spoken_word"].labels == ("yes", "no", "up", "down", "left", "right", "stop", "go")
    assert tasks["language"].labels == ("english", "german", "french", "spanish")
    for name in LEXICAL_TASKS:
        t = tasks[name]
        assert t.source == "synthetic" and t.group_column == "group" and not t.paralinguistic and len(t.cue) > 40


@pytest.mark.parametrize("name", LEXICAL_TASKS)
def test_balanced_grouped_and_deterministic(tmp_path, name):
    task, source = open_task(name, tmp_path / "a", seed=3, n_per_class=2)
    clips = list(source)
    counts = Counter(c.label for c in clips)
    assert set(counts) == set(task.labels) and set(counts.values()) == {2}
    by_group = {}
    for c in clips:
        by_group.setdefault(c.group, set()).add(c.label)
    assert all(labels == set(task.labels) for labels in by_group.values())  # every voice speaks every class
    assert all(0.2 < c.duration < 6 and c.sample_rate == 16000 for c in clips)
    _, again = open_task(name, tmp_path / "b", seed=3, n_per_class=2)
    assert [c.content_hash for c in again] == [c.content_hash for c in clips]
