"""Datasheet words: display names and verbalisers of the registered tasks, and a manifest's own file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from speechprobe.data.registry import registered_tasks
from speechprobe.data.resolve import open_task
from speechprobe.data.tasks import Task, load_verbalisers
from speechprobe.errors import ConfigError


def test_registered_tasks_have_consistent_words():
    tasks = registered_tasks()
    for task in tasks.values():
        assert set(task.display_names) <= set(task.labels), task.name
        assert set(task.verbalisers) <= set(task.labels), task.name
        forms = [v.casefold() for x in task.labels for v in task.phrasings(x)]
        assert len(forms) == len(set(forms)), f"{task.name}: a phrasing names two labels"
    accent = tasks["accent"]
    assert accent.display("en-029") == "Caribbean English" and accent.phrasings("en-029")[0] == "Caribbean English"
    assert tasks["distance"].phrasings("0.4m") == ("close", "close, about 40 cm")
    assert tasks["language"].phrasings("german") == ("German",)
    assert tasks["spoken_word"].display("yes") == "yes" and tasks["spoken_word"].phrasings("yes") == ("yes",)
    assert tasks["ds-accent"].display("bangla") == "English, Bangla speaker"


def test_defaults_without_words():
    t = Task("t", ("a_b", "c"), False, "x", "cue", display_names={"a_b": "A B"})
    assert (t.display("a_b"), t.display("c")) == ("A B", "c")
    assert (t.phrasings("a_b"), t.phrasings("c")) == (("A B",), ("c",))


def test_verbaliser_file_formats(tmp_path):
    path = tmp_path / "v.json"
    path.write_text(
        json.dumps(
            {
                "EN-029": ["Caribbean English", "Jamaican English"],
                "en-us": {"display": "US English", "phrasings": ["American English", "American"]},
                "fr": "French",
            }
        )
    )
    display, phrasings = load_verbalisers(path, ["en-029", "en-us", "fr", "de"])
    assert display == {"en-029": "Caribbean English", "en-us": "US English", "fr": "French"}
    assert phrasings["en-us"] == ("American English", "American") and phrasings["fr"] == ("French",)
    assert "de" not in phrasings  # left out: the label itself


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ('["a"]', "expected an object"),
        ('{"xx": ["X"]}', "label 'xx' is not in the task's label set"),
        ('{"a": []}', "non-empty list"),
        ('{"a": ["same"], "b": ["Same"]}', "'Same' is given to both 'a' and 'b'"),
        ('{"a": {"display": "A", "words": ["x"]}}', "unknown key"),
    ],
)
def test_bad_verbaliser_files_name_the_file(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message) as e:
        load_verbalisers(path, ["a", "b"])
    assert str(path) in str(e.value)


def test_a_manifest_brings_its_own_verbalisers(tmp_path):
    for name in ("a.wav", "b.wav"):
        sf.write(tmp_path / name, np.zeros(1600, dtype=np.float32), 16000)
    (tmp_path / "acc.csv").write_text("path,label\na.wav,en-029\nb.wav,en-us\n")
    task, _ = open_task(str(tmp_path / "acc.csv"), tmp_path / "cache")
    assert task.phrasings("en-029") == ("en-029",)
    (tmp_path / "acc.verbalisers.json").write_text(json.dumps({"en-029": ["Caribbean English"]}))
    task, _ = open_task(str(tmp_path / "acc.csv"), tmp_path / "cache")
    assert task.display("en-029") == "Caribbean English" and task.phrasings("en-us") == ("en-us",)
