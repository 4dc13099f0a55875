"""Datasheet words of the synthetic tasks: display names and natural phrasings per label.

``DISPLAY[task][label]`` is what a reader expects in a table (``en-029`` -> "Caribbean English");
``VERBALISERS[task][label]`` are phrasings a text decoder can say as an answer, the first one shown
in zero-shot prompts. Labels left out keep the label itself (display) or the display name (phrasing).
Phrasings are few on purpose: every one is scored for every clip and prompt in likelihood mode.
"""

from __future__ import annotations

ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth")
COUNTS = ("one", "two", "three", "four", "five")

DISPLAY: dict[str, dict[str, str]] = {
    "accent": {
        "en-us": "American English",
        "en-gb": "British English",
        "en-gb-scotland": "Scottish English",
        "en-029": "Caribbean English",
        "en-gb-x-rp": "Received Pronunciation",
    },
    "emotion": {x: x for x in ("neutral", "happy", "sad", "angry")},
    "stress": {c: f"{w} syllable" for c, w in zip(COUNTS[:3], ORDINALS)},
    "emphasis": {str(i): f"{w} word" for i, w in enumerate(ORDINALS)},
    "speaker_count": {str(i + 1): f"{w} speaker{'s' if i else ''}" for i, w in enumerate(COUNTS[:4])},
    "speaker_count_ext": {str(i + 1): f"{w} speaker{'s' if i else ''}" for i, w in enumerate(COUNTS)},
    "distance": {"0.4m": "close (0.4 m)", "2.0m": "medium (2 m)", "4.0m": "far (4 m)"},
    "multi_speaker": {"false": "one speaker", "true": "overlapping speakers"},
    "spoof": {"authentic": "genuine", "spoofed": "spoofed"},
    "language": {x: x.capitalize() for x in ("english", "german", "french", "spanish")},
}

VERBALISERS: dict[str, dict[str, tuple[str, ...]]] = {
    "accent": {
        "en-us": ("American English", "American"),
        "en-gb": ("British English", "British"),
        "en-gb-scotland": ("Scottish English", "Scottish"),
        "en-029": ("Caribbean English", "Caribbean"),
        "en-gb-x-rp": ("Received Pronunciation", "posh British English"),
    },
    "stress": {c: (c, f"the {w} syllable") for c, w in zip(COUNTS[:3], ORDINALS)},
    "emphasis": {str(i): (f"the {w} word", f"word {i + 1}") for i, w in enumerate(ORDINALS)},
    "speaker_count": {str(i + 1): (w, str(i + 1)) for i, w in enumerate(COUNTS[:4])},
    "speaker_count_ext": {str(i + 1): (w, str(i + 1)) for i, w in enumerate(COUNTS)},
    "distance": {
        "0.4m": ("close", "close, about 40 cm"),
        "2.0m": ("medium distance", "about 2 metres away"),
        "4.0m": ("far", "far away, about 4 metres"),
    },
    "multi_speaker": {"false": ("no", "one speaker"), "true": ("yes", "two speakers")},
    "spoof": {"authentic": ("genuine", "authentic"), "spoofed": ("spoofed", "fake")},
    "dialogue_act": {"question": ("question",), "statement": ("statement",), "command": ("command",)},
    "gender": {"female": ("female", "a woman"), "male": ("male", "a man")},
    "language": {x: (x.capitalize(),) for x in ("english", "german", "french", "spanish")},
}


def datasheet_words(task: str) -> dict:
    """``Task`` keyword arguments with ``task``'s display names and verbalisers."""
    return {"display_names": DISPLAY.get(task, {}), "verbalisers": VERBALISERS.get(task, {})}
