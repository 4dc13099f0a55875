"""The built-in synthetic paralinguistic suite: eSpeak NG clips where one controlled cue
carries the label.

Importing this module registers one ``Task`` per synthetic task (``source="synthetic"``,
``group_column="group"``). Most tasks are *crossed*: a list of draws (voice, sentence,
rate/pitch jitter, room seed) is made once and rendered in every class, so classes differ only
in the cue. ``group`` is the voice, except for the accent task (the speaker variant, crossed with
every accent), mixtures (the first talker's voice), ``stress`` (the word: each word has its own
two voices, so a word group holds out both) and ``speaker_id`` (the sentence session, since the
voice is the label). Each task's dimension follows Dynamic-SUPERB's taxonomy: speaker for
the speaker counts, ``multi_speaker`` and ``speaker_id``, semantic for ``dialogue_act`` (the wording
carries the label too), paralinguistic for the rest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from xml.sax.saxutils import escape

import numpy as np

from ..tasks import Task, register
from . import effects, espeak
from .stress_words import STRESS_LABELS, STRESS_WORDS, stressed_phonemes
from .words import datasheet_words

# 2: gender_pitchnorm seeds Praat per clip (was unseeded). 3: the crossed paralinguistic tasks draw from all
# 24 voices (were 8), so a grouped test fold holds several speakers. 4: ``stress`` is word stress (the stressed
# syllable of one word, as ds-stress); the sentence task is ``emphasis``. An older cached generation is redone once.
GENERATOR_VERSION = 4
SAMPLE_RATE = 16_000
BASE_AMPLITUDE = 60  # eSpeak -a: headroom below full scale for loudness cues
MIX_SECONDS = 3.0
MIX_RMS = 0.06

SENTENCES: tuple[str, ...] = (  # six words each (the emphasis task emphasises one of them)
    "Anna gave Mark seven blue pens",
    "The old man painted his fence",
    "My sister bought three green apples",
    "We never walked home after dark",
    "Paul will visit London next summer",
    "The children sang loudly at school",
    "Nobody answered the phone this morning",
    "Her brother fixed the broken window",
    "The train arrived late last night",
    "Laura keeps two cats at home",
    "They planted roses near the river",
    "Our teacher read a long story",
    "The doctor called me on Monday",
    "Ben found a wallet on Friday",
    "The dog chased the red ball",
    "Maria cooked dinner for her friends",
)
DIALOGUE: tuple[tuple[str, str, str], ...] = (  # (statement, question, command)
    ("You closed the door.", "Did you close the door?", "Close the door!"),
    ("She is reading the letter.", "Is she reading the letter?", "Read the letter!"),
    ("They are leaving tonight.", "Are they leaving tonight?", "Leave tonight!"),
    ("He brought the tickets.", "Did he bring the tickets?", "Bring the tickets!"),
    ("You turned off the lights.", "Did you turn off the lights?", "Turn off the lights!"),
    ("We are waiting outside.", "Are we waiting outside?", "Wait outside!"),
    ("You called your mother.", "Did you call your mother?", "Call your mother!"),
    ("The window is open.", "Is the window open?", "Open the window!"),
)
MALE = (
    "en-us+m1",
    "en-gb+m2",
    "en-us+m3",
    "en-gb+m4",
    "en-us+m6",
    "en-gb+m7",
    "en-us+Andy",
    "en-gb+david",
    "en-us+m8",
    "en-gb+sandro",
    "en-us+travis",
    "en-gb+michel",
)
FEMALE = (
    "en-us+f1",
    "en-gb+f2",
    "en-us+f3",
    "en-gb+f4",
    "en-us+f5",
    "en-gb+Annie",
    "en-us+steph",
    "en-gb+Alicia",
    "en-us+Andrea",
    "en-gb+belinda",
    "en-us+anika",
    "en-gb+aunty",
)
VOICES = MALE + FEMALE  # the 24 voices (groups) of the crossed paralinguistic tasks
CORE_VOICES = MALE[:4] + FEMALE[:4]  # speaker_id's eight classes and the lexical tasks' voices
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp")
EMOTIONS = {  # label: (pitch offset, pitch range %, rate factor, amplitude, word gap)
    "neutral": (0, 100, 1.0, BASE_AMPLITUDE, 0),
    "happy": (14, 180, 1.12, 75, 0),
    "sad": (-12, 35, 0.75, 35, 4),
    "angry": (4, 150, 1.15, 95, 0),
}
DISTANCES = {"0.4m": 0.4, "2.0m": 2.0, "4.0m": 4.0}


@dataclass(frozen=True)
class Speech:
    """One eSpeak NG call."""

    text: str
    voice: str
    rate: int = 175
    pitch: int = 50
    pitch_range: int | None = None
    amplitude: int = BASE_AMPLITUDE
    word_gap: int = 0
    ssml: bool = False


Post = Callable[[list[np.ndarray], np.random.Generator], np.ndarray]


def _first(audio: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    return audio[0]


@dataclass(frozen=True)
class Item:
    """One clip to render: its speech, a post-processing step and the seed that step uses."""

    label: str
    group: str
    text: str
    speech: tuple[Speech, ...]
    seed: int
    post: Post = _first


@dataclass(frozen=True)
class _Draw:
    voice: int
    sentence: int
    rate: int
    pitch: int
    seed: int


def _balanced(n: int, size: int, rng: np.random.Generator) -> list[int]:
    """``n`` indices into ``range(size)``, each used equally often (shuffled per cycle)."""
    out: list[int] = []
    while len(out) < n:
        out.extend(int(i) for i in rng.permutation(size))
    return out[:n]


def _jitter(rng: np.random.Generator) -> tuple[int, int]:
    """A per-clip (rate, pitch) around eSpeak's defaults."""
    return 175 + int(rng.integers(-15, 16)), 50 + int(rng.integers(-6, 7))


def _draws(n: int, n_voices: int, n_sentences: int, rng: np.random.Generator) -> list[_Draw]:
    """``n`` (voice, sentence, jitter, seed) draws with voices and sentences balanced."""
    voices, sentences = _balanced(n, n_voices, rng), _balanced(n, n_sentences, rng)
    return [_Draw(v, s, *_jitter(rng), int(rng.integers(2**31))) for v, s in zip(voices, sentences)]


def _speech(d: _Draw, text: str, **kw) -> Speech:
    """A draw's speech in its crossed-task voice."""
    return Speech(text, VOICES[d.voice], rate=d.rate, pitch=d.pitch, **kw)


# -- task generators: (n_per_class, rng) -> items, registered with their Task; the docstring is the task's cue --

TaskGenerator = Callable[[int, np.random.Generator], list[Item]]
_GENERATORS: dict[str, TaskGenerator] = {}
DEFAULT_N_PER_CLASS: dict[str, int] = {}


def _task(name: str, labels: tuple[str, ...], n_default: int, cue: str | None = None, para: bool | str = True):
    """Register a generator of items (as a list), its default size and its Task, whose ``cue`` is the generator's
    docstring unless given; ``para`` is its dimension (``Task.dimension``; True: paralinguistic)."""

    def deco(fn: Callable[[int, np.random.Generator], Iterable[Item]]) -> TaskGenerator:
        # group: the voice; the sentence session (speaker_id); the word, each with its own voices (stress)
        noun = {"speaker_id": "session", "stress": "word"}.get(name, "speaker")
        words = datasheet_words(name)
        described = cue or " ".join((fn.__doc__ or "").split())
        register(Task(name, labels, para, "synthetic", described, group_column="group", group_name=noun, **words))
        _GENERATORS[name] = lambda n, rng: list(fn(n, rng))
        DEFAULT_N_PER_CLASS[name] = n_default
        return fn

    return deco


@_task("accent", ACCENTS, 48)
def _accent(n: int, rng: np.random.Generator) -> Iterator[Item]:
    """eSpeak NG accent voice (phoneme inventory, vowel quality, intonation rules); the same speaker variants,
    sentences and jitter in every class; group = speaker variant"""
    draws = _draws(n, len(VOICES), len(SENTENCES), rng)
    for label in ACCENTS:
        for d in draws:
            variant = VOICES[d.voice].partition("+")[2]
            speech = Speech(SENTENCES[d.sentence] + ".", f"{label}+{variant}", d.rate, d.pitch)
            yield Item(label, variant, speech.text, (speech,), d.seed)


@_task("emotion", tuple(EMOTIONS), 48)
def _emotion(n: int, rng: np.random.Generator) -> Iterator[Item]:
    """prosody profile: pitch level and range, speaking rate, loudness and word gaps (happy: high/wide/fast; sad:
    low/flat/slow/quiet with pauses; angry: wide/fast/loud); same voices and sentences in every class"""
    for d in _draws(n, len(VOICES), len(SENTENCES), rng):
        text = SENTENCES[d.sentence] + "."
        for label, (dpitch, span, speed, amplitude, gap) in EMOTIONS.items():
            speech = Speech(
                text,
                VOICES[d.voice],
                round(d.rate * speed),
                d.pitch + dpitch,
                pitch_range=span,
                amplitude=amplitude,
                word_gap=gap,
            )
            yield Item(label, speech.voice, text, (speech,), d.seed)


@_task("stress", STRESS_LABELS, 96)
def _stress(n: int, rng: np.random.Generator) -> Iterator[Item]:
    """position (one, two, three) of the stressed syllable in one three-syllable English word, as in Dynamic-SUPERB's
    ds-stress: eSpeak NG phoneme input with the primary stress on that syllable (longer, louder, with the pitch
    accent); every word in every class; each word spoken by its own male and female voice; group = word (so a test
    fold's words and voices are both unseen)"""
    said: Counter[int] = Counter()
    for w in _balanced(n, len(STRESS_WORDS), rng):
        word, syllables = STRESS_WORDS[w]
        voice = (MALE, FEMALE)[said[w] % 2][w]  # word w: MALE[w] and FEMALE[w] in turn
        said[w] += 1
        rate, pitch = _jitter(rng)
        seed = int(rng.integers(2**31))
        for position, label in enumerate(STRESS_LABELS):
            speech = Speech(stressed_phonemes(syllables, position), voice, rate, pitch)
            yield Item(label, word, word, (speech,), seed)


EMPHASIS_LABELS = tuple(str(i) for i in range(6))


def emphasised(sentence: str, position: int) -> str:
    """SSML for a six-word sentence with the word at ``position`` emphasised."""
    words = [escape(w) for w in sentence.split()]
    emphasis = f'<emphasis level="moderate">{words[position]}</emphasis>'
    words[position] = espeak.prosody(emphasis, pitch="+35%", rate="75%")
    return " ".join(words) + "."


@_task("emphasis", EMPHASIS_LABELS, 48)
def _emphasis(n: int, rng: np.random.Generator) -> Iterator[Item]:
    """position (0-5) of the emphasised word in a six-word sentence: SSML <emphasis> (louder) with +35% pitch and 75%
    rate on that word; same voices and sentences in every class"""
    for d in _draws(n, len(VOICES), len(SENTENCES), rng):
        sentence = SENTENCES[d.sentence]
        for label in EMPHASIS_LABELS:
            speech = _speech(d, emphasised(sentence, int(label)), ssml=True)
            yield Item(label, speech.voice, sentence + ".", (speech,), d.seed)


def _mixture(talkers: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Equal-level talkers at random sorted onsets in a fixed window; RMS normalised."""
    length = int(MIX_SECONDS * SAMPLE_RATE)
    onsets = sorted(int(x) for x in rng.uniform(0.0, 0.6 * length, len(talkers)))
    onsets[0] = int(rng.uniform(0.0, 0.2 * SAMPLE_RATE))
    out = effects.mix(talkers, onsets, length)
    return out * (MIX_RMS / max(effects.rms(out), 1e-8))


def _mixture_items(counts: dict[str, int], n: int, rng: np.random.Generator) -> Iterator[Item]:
    """Mixtures of ``counts[label]`` distinct voices (of all 24) saying different sentences."""
    pool = VOICES
    for label, count in counts.items():
        for lead in _balanced(n, len(pool), rng):
            others = rng.permutation([i for i in range(len(pool)) if i != lead])[: count - 1]
            sentences = rng.choice(len(SENTENCES), count, replace=False)
            speech = tuple(
                Speech(SENTENCES[s] + ".", pool[v], *_jitter(rng)) for v, s in zip([lead, *others], sentences)
            )
            text = " | ".join(s.text for s in speech)
            yield Item(label, pool[lead], text, speech, int(rng.integers(2**31)), _mixture)


_COUNT_CUE = (
    "number of distinct voices ({}) mixed at equal level with random onsets "
    "(overlapping or sequential) in a fixed 3 s window, mixture RMS normalised; "
    "group = first talker's voice"
)


@_task("speaker_count", ("1", "2", "3", "4"), 48, _COUNT_CUE.format("1-4"), para="speaker")
def _speaker_count(n: int, rng: np.random.Generator) -> Iterator[Item]:
    return _mixture_items({str(c): c for c in range(1, 5)}, n, rng)


@_task("gender", ("female", "male"), 64)
def _gender(n: int, rng: np.random.Generator) -> Iterator[Item]:
    """eSpeak variant gender (F0 and formant scaling of 12 female and 12 male variants); same sentences and jitter in
    both classes; group = voice"""
    draws = _draws(n, len(MALE), len(SENTENCES), rng)
    for label, pool in (("female", FEMALE), ("male", MALE)):
        for d in draws:
            speech = Speech(SENTENCES[d.sentence] + ".", pool[d.voice], d.rate, d.pitch)
            yield Item(label, speech.voice, speech.text, (speech,), d.seed)


def _distance(audio: list[np.ndarray], rng: np.random.Generator, metres: float) -> np.ndarray:
    """The talker ``metres`` away in a room (RT60, volume) drawn from the item's seed."""
    rt60, volume = float(rng.uniform(0.3, 0.8)), float(rng.uniform(200.0, 1000.0))
    return effects.at_distance(audio[0], SAMPLE_RATE, metres, rng, rt60=rt60, volume=volume)


@_task("distance", tuple(DISTANCES), 30)
def _distance_task(n: int, rng: np.random.Generator) -> Iterator[Item]:
    """simulated source distance: inverse-distance level drop and direct-to-reverberant ratio (-6 dB per doubling, 0 dB
    at the critical distance of 0.9-3.3 m) in a room with exponentially decaying noise reverberation (RT60 0.3-0.8
    s, 200-1000 m3); same voices, sentences and rooms in every class"""
    for d in _draws(n, len(VOICES), len(SENTENCES), rng):
        speech = _speech(d, SENTENCES[d.sentence] + ".")
        for label, metres in DISTANCES.items():
            post = partial(_distance, metres=metres)
            yield Item(label, speech.voice, speech.text, (speech,), d.seed, post)


@_task("multi_speaker", ("false", "true"), 40, para="speaker")
def _multi_speaker(n: int, rng: np.random.Generator) -> Iterator[Item]:
    """one talker vs two overlapping talkers at equal level in a fixed 3 s window, mixture RMS normalised; group =
    first talker's voice"""
    return _mixture_items({"false": 1, "true": 2}, n, rng)


DIALOGUE_ACTS = ("statement", "question", "command")  # the order of DIALOGUE's columns


@_task("dialogue_act", ("question", "statement", "command"), 24, para="semantic")
def _dialogue_act(n: int, rng: np.random.Generator) -> Iterator[Item]:
    """intonation (final rise, fall, exclamatory contour) and wording (interrogative, declarative, imperative) of the
    same propositions; same voices in every class"""
    for d in _draws(n, len(VOICES), len(DIALOGUE), rng):
        for label, text in zip(DIALOGUE_ACTS, DIALOGUE[d.sentence]):
            speech = _speech(d, text)
            yield Item(label, speech.voice, text, (speech,), d.seed)


def _spoof(audio: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A random non-empty chain of down/up resampling, band-limiting, mu-law quantisation."""
    x = audio[0]
    for step in sorted(rng.permutation(3)[: int(rng.integers(1, 4))]):
        if step == 0:
            x = effects.down_up(x, SAMPLE_RATE, int(rng.choice([4000, 6000, 8000])))
        elif step == 1:
            x = effects.band_limit(x, SAMPLE_RATE)
        else:
            x = effects.mu_law(x, bits=int(rng.integers(5, 9)))
    return x


@_task("spoof", ("authentic", "spoofed"), 40)
def _spoof_task(n: int, rng: np.random.Generator) -> Iterator[Item]:
    """channel: clean synthesis vs the same text and voice through a random chain of vocoder-like down/up resampling
    (4-8 kHz), telephone band-limiting and mu-law 5-8 bit quantisation; paired texts and voices"""
    for d in _draws(n, len(VOICES), len(SENTENCES), rng):
        speech = _speech(d, SENTENCES[d.sentence] + ".")
        yield Item("authentic", speech.voice, speech.text, (speech,), d.seed)
        yield Item("spoofed", speech.voice, speech.text, (speech,), d.seed, _spoof)


@_task("speaker_id", CORE_VOICES, 10, para="speaker")
def _speaker_id(n: int, rng: np.random.Generator) -> Iterator[Item]:
    """voice identity (eSpeak language + variant, 4 male and 4 female); every voice speaks every session; group =
    sentence session, since the voice is the label"""
    for i, d in enumerate(_draws(n, 1, len(SENTENCES), rng)):
        for voice in CORE_VOICES:
            speech = Speech(SENTENCES[d.sentence] + ".", voice, d.rate, d.pitch)
            yield Item(voice, f"s{i:02d}", speech.text, (speech,), d.seed)


@_task("speaker_count_ext", ("1", "2", "3", "4", "5"), 16, _COUNT_CUE.format("1-5"), para="speaker")
def _speaker_count_ext(n: int, rng: np.random.Generator) -> Iterator[Item]:
    return _mixture_items({str(c): c for c in range(1, 6)}, n, rng)


EXTENDED_TASKS: tuple[str, ...] = ("speaker_count_ext",)
SYNTHETIC_TASKS: tuple[str, ...] = tuple(n for n in _GENERATORS if n not in EXTENDED_TASKS)
