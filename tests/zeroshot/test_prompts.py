"""Prompt templates: built-in ids, user files, slot validation and the clear messages on bad templates."""

from __future__ import annotations

import json

import pytest

from speechprobe.errors import ConfigError
from speechprobe.zeroshot.prompts import BUILTIN, check_template, load_template_file, resolve_prompts

LABELS = ("neutral", "happy", "sad", "angry")


def test_builtin_prompts_by_id_and_all():
    assert [t.id for t in resolve_prompts(["all"])] == ["instruction", "choose", "question"]
    assert [t.id for t in resolve_prompts(["question", "choose", "question"])] == ["question", "choose"]
    assert BUILTIN["choose"].render("emotion", LABELS) == "Choose one of: neutral, happy, sad, angry."
    assert BUILTIN["question"].render("emotion", LABELS) == (
        "What emotion does the speaker express? (neutral, happy, sad or angry)"
    )
    assert BUILTIN["question"].render("my_task", ("a", "b")) == "What is the my task of this recording? (a or b)"
    instruction = "How far is the speaker? The answer could be 0.4m, 2.0m, or 4.0m."
    assert BUILTIN["instruction"].render("ds-distance", ("0.4m",), instruction) == instruction
    # a clip without one is asked the task's instruction, in Dynamic-SUPERB's form
    fallback = BUILTIN["instruction"].render("emotion", ("neutral", "happy", "sad"), None)
    assert fallback == "What emotion does the speaker express? The answer could be neutral, happy or sad."


def test_user_template_files(tmp_path):
    txt = tmp_path / "terse.txt"
    txt.write_text("Label the clip ({labels_or}) for {task}:\n")
    (t,) = resolve_prompts([f"file:{txt}"])
    assert (
        t.id == "file-terse" and t.render("speaker_count", ("1", "2")) == "Label the clip (1 or 2) for speaker count:"
    )
    js = tmp_path / "mine.json"
    js.write_text(json.dumps({"a": "Options: {labels}. Answer:", "b": "{question}"}))
    assert [t.id for t in resolve_prompts([str(js), "choose"])] == ["file-a", "file-b", "choose"]


def test_template_without_labels_slot_is_refused_for_generate_only(tmp_path):
    path = tmp_path / "bare.txt"
    path.write_text("What do you hear?")
    (t,) = load_template_file(path)
    check_template(t, ["likelihood"])  # likelihood scores every label itself: fine
    with pytest.raises(ConfigError) as e:
        check_template(t, ["likelihood", "generate"])
    msg = str(e.value)
    assert "file-bare" in msg and "{labels}" in msg and "generate" in msg and "likelihood mode only" in msg


def test_bad_templates_get_clear_messages(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("Pick {label} now")
    with pytest.raises(ConfigError, match=r"unknown slot \{label\}.*\{labels\}"):
        resolve_prompts([str(bad)])
    broken = tmp_path / "broken.txt"
    broken.write_text("Pick {labels")
    with pytest.raises(ConfigError, match="malformed template"):
        resolve_prompts([str(broken)])
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_prompts(["file:/nonexistent/prompt.txt"])
    with pytest.raises(ConfigError, match="unknown prompt 'chose'"):
        resolve_prompts(["chose"])
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    with pytest.raises(ConfigError, match="JSON object"):
        resolve_prompts([str(empty)])
