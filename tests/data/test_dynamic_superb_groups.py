"""Dynamic-SUPERB grouping: rows the file-name pattern misses are groups of their own and are counted;
tasks whose groups (dialogues) share speakers say so."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from speechprobe.data.registry import registered_tasks
from speechprobe.data.resolve import open_task
from speechprobe.probes.cv import normalise_groups


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    import datasets

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


def _meld_copy(root):
    from datasets import Audio, Dataset

    buf = io.BytesIO()
    sf.write(buf, np.full(800, 0.1, np.float32), 16000, format="WAV")
    files = ["dia1_utt0.mp4", "dia1_utt1.mp4", "dia2_utt0.mp4", "clip_a.wav", "clip_b.wav", "clip_c.wav"]
    rows = [
        {"file": f, "audio": {"bytes": buf.getvalue(), "path": None}, "instruction": "x", "label": label}
        for f, label in zip(files, ["joy", "anger", "joy", "anger", "joy", "Sad"])
    ]
    Dataset.from_list(rows).cast_column("audio", Audio()).save_to_disk(str(root))
    return root


def test_unmatched_rows_get_groups_of_their_own_and_are_counted(tmp_path):
    _, source = open_task(f"ds-emotion={_meld_copy(tmp_path / 'meld')}", tmp_path)
    groups = source.groups()
    assert groups == ["dia1", "dia1", "dia2", None, None, None]  # read without decoding audio
    clips = list(source)
    assert [c.group for c in clips] == groups and source.group_unmatched == 3
    folded, singletons = normalise_groups(groups, len(groups))
    assert singletons == 3 and len(set(folded)) == 5  # dia1, dia2 and one group per unmatched row
    assert source.labels() == ["joy", "anger", "joy", "anger", "joy", "sadness"]


@pytest.mark.parametrize("name", ["ds-emotion", "ds-dialogue-emotion", "ds-dialogue-act"])
def test_dialogue_grouped_tasks_say_their_speakers_are_shared(name):
    task = registered_tasks()[name]
    assert "speaker" in task.group_caveat and "leak" in task.group_caveat
    assert "speakers" in task.cue and ("shared" in task.cue or "do not hold" in task.cue)


def test_speaker_grouped_tasks_have_no_caveat():
    tasks = registered_tasks()
    assert tasks["ds-accent"].group_caveat == "" and tasks["ds-distance"].group_caveat == ""
