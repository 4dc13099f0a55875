"""The words of the synthetic word-stress task: three-syllable English words as eSpeak NG phonemes.

Dynamic-SUPERB's ds-stress (StressDetection_MIRSD) labels one English word with the 1-based position
of its stressed syllable (``undesirable`` -> ``three``). The synthetic ``stress`` task renders each
word below with the primary stress (``'``) on each of its syllables in turn, so the word itself says
nothing about the label. Every syllable is written with a full vowel (no schwa), so any of them can
carry the stress, and an unvoiced consonant or a cluster that American voices do not flap opens each
one after the first (a pitch tracker then finds one voiced stretch per syllable; the tests measure
each syllable's duration, F0 and level that way).
"""

from __future__ import annotations

STRESS_LABELS: tuple[str, ...] = ("one", "two", "three")  # the benchmark's spellings
STRESS_WORDS: tuple[tuple[str, tuple[str, str, str]], ...] = (  # (word, eSpeak NG syllables)
    ("pacific", ("pa", "sI", "fIk")),
    ("picasso", ("pI", "ka", "soU")),
    ("typical", ("tI", "pI", "kal")),
    ("optical", ("0p", "tI", "kal")),
    ("fantastic", ("fan", "tas", "tIk")),
    ("kentucky", ("kEn", "tV", "ki")),
    ("specific", ("spE", "sI", "fIk")),
    ("jessica", ("dZE", "sI", "ka")),
    ("africa", ("a", "fri", "ka")),
    ("mexico", ("mE", "ksI", "koU")),
    ("pakistan", ("pa", "kI", "stan")),
    ("paprika", ("pa", "pri", "ka")),
)


def stressed_phonemes(syllables: tuple[str, ...], position: int) -> str:
    """eSpeak NG phoneme input (``[[...]]``) with the primary stress on syllable ``position`` (0-based).

    The trailing space matters: eSpeak NG 1.51 in SSML mode reads a tag that follows ``]]`` directly
    (``</speak>``) aloud as text.
    """
    if not 0 <= position < len(syllables):
        raise ValueError(f"syllable {position} of a {len(syllables)}-syllable word")
    marked = "".join(("'" if i == position else "") + s for i, s in enumerate(syllables))
    return f"[[{marked}]] "
