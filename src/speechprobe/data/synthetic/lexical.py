"""Synthetic tasks where the *words* carry the label: spoken command words and spoken language.

These complement the paralinguistic suite (``suite.py``) with tasks a speech model's decoder can
answer zero-shot: a Whisper decoder transcribes the word it hears, an audio LLM names the
language. They use the suite's generator API (``_task`` registration, ``Item``/``Speech``, the
same rendering, caching and manifest), so ``open_task("spoken_word", ...)`` works like any other
synthetic task. Both are *non*-paralinguistic (dimension ``content``): the lexical or phonetic
content carries the label. Every class is spoken by the same voice variants with the same
rate/pitch jitter, and ``group`` is the voice variant, so no label is a single voice.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .suite import CORE_VOICES, Item, Speech, _balanced, _jitter, _task

LEXICAL_TASKS: tuple[str, ...] = ("spoken_word", "language")
SPOKEN_WORDS: tuple[str, ...] = ("yes", "no", "up", "down", "left", "right", "stop", "go")


@_task("spoken_word", SPOKEN_WORDS, 16, para="content")
def _spoken_word(n: int, rng: np.random.Generator) -> Iterator[Item]:
    """the spoken command word (lexical content, as in Speech Commands): one isolated word per clip; the same 8 voices
    and rate/pitch jitter in every class; group = voice"""
    voices = _balanced(n, len(CORE_VOICES), rng)
    draws = [(v, *_jitter(rng), int(rng.integers(2**31))) for v in voices]
    for word in SPOKEN_WORDS:
        for v, rate, pitch, seed in draws:
            speech = Speech(word.capitalize() + ".", CORE_VOICES[v], rate, pitch)
            yield Item(word, CORE_VOICES[v], word, (speech,), seed)


# The same eight short sentences in each language (translations), so content is matched.
LANGUAGE_SENTENCES: dict[str, tuple[str, str]] = {  # label: (eSpeak NG voice, sentences)
    "english": (
        "en-us",
        (
            "The weather is nice today.",
            "My brother lives in a small town.",
            "We are going to the market tomorrow.",
            "The children are playing in the garden.",
            "I would like a cup of coffee.",
            "The train leaves at eight o'clock.",
            "She reads a book every evening.",
            "Where is the nearest station?",
        ),
    ),
    "german": (
        "de",
        (
            "Das Wetter ist heute schön.",
            "Mein Bruder wohnt in einer kleinen Stadt.",
            "Wir gehen morgen auf den Markt.",
            "Die Kinder spielen im Garten.",
            "Ich hätte gern eine Tasse Kaffee.",
            "Der Zug fährt um acht Uhr ab.",
            "Sie liest jeden Abend ein Buch.",
            "Wo ist der nächste Bahnhof?",
        ),
    ),
    "french": (
        "fr-fr",
        (
            "Il fait beau aujourd'hui.",
            "Mon frère habite dans une petite ville.",
            "Nous allons au marché demain.",
            "Les enfants jouent dans le jardin.",
            "Je voudrais une tasse de café.",
            "Le train part à huit heures.",
            "Elle lit un livre chaque soir.",
            "Où est la gare la plus proche?",
        ),
    ),
    "spanish": (
        "es",
        (
            "Hoy hace buen tiempo.",
            "Mi hermano vive en un pueblo pequeño.",
            "Mañana vamos al mercado.",
            "Los niños juegan en el jardín.",
            "Quisiera una taza de café.",
            "El tren sale a las ocho.",
            "Ella lee un libro cada noche.",
            "¿Dónde está la estación más cercana?",
        ),
    ),
}
LANGUAGES: tuple[str, ...] = tuple(LANGUAGE_SENTENCES)


@_task("language", LANGUAGES, 16, para="content")
def _language(n: int, rng: np.random.Generator) -> Iterator[Item]:
    """spoken language (eSpeak NG English, German, French, Spanish voices: phoneme inventory, prosody rules, lexicon)
    reading translations of the same eight sentences; the same voice variants and jitter in every class; group =
    voice variant"""
    variants = [v.partition("+")[2] for v in CORE_VOICES]
    voices, sentences = _balanced(n, len(variants), rng), _balanced(n, 8, rng)
    draws = [(v, s, *_jitter(rng), int(rng.integers(2**31))) for v, s in zip(voices, sentences)]
    for label, (voice, texts) in LANGUAGE_SENTENCES.items():
        for v, s, rate, pitch, seed in draws:
            speech = Speech(texts[s], f"{voice}+{variants[v]}", rate, pitch)
            yield Item(label, variants[v], texts[s], (speech,), seed)
