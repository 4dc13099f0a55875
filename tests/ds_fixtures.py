"""Small copies of every registered Dynamic-SUPERB task in the schema its public card states
(/work/shared/dynamic-superb-cards.md, docs/tasks.md): the columns (``file, audio, instruction, label`` plus the
extras), the label spellings (``no_emotion``, booleans for MUStARD, ``0.4m``), the file-name patterns, the class
imbalance and the instruction style, built at test time as a hub-style parquet folder
(``data/test-00000-of-00001.parquet``) with tiny synthetic audio (a tone whose pitch follows the label).

The imbalance follows each card's full-set distribution, with every class raised to ``MIN_PER_CLASS`` clips over
at least two groups, so a 2-fold grouped plan can run: the cards' rarest classes (0-2 rows in a 200-row hub
set, one AccentDB speaker for welsh and odiya) are what the rare-class rule handles, not these fixtures.
What no card states (file names other than MIRSD's and DailyTalk's, the ``utterance N`` id formats, most
instruction texts) follows the project's reading and is marked unverified in docs/tasks.md.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

MIN_PER_CLASS = 4
SR = 16_000


@dataclass(frozen=True)
class Card:
    """One task's card facts as a fixture recipe: label spelling -> full-set share, and the row layout."""

    shares: dict[object, float]  # label as the copy spells it (str or bool) -> share of the full set
    file: str  # file-name pattern: {i} row, {g} group index, {word} (MIRSD)
    instruction: str  # the instruction style; {options} is the label list
    extras: tuple[str, ...] = ()  # extra columns: "word", "utterance" (utterance 1..5)
    groups: int = 4
    seconds: float = 0.3
    words: dict[str, tuple[str, ...]] = field(default_factory=dict)  # MIRSD: label -> words with that stress


_ASK = "{question} The answer could be {options}."
_MIXTURES = Card(
    {"true": 1, "false": 1},
    "mixture_{i:04d}.wav",
    _ASK.format(question="Is there more than one speaker in this recording?", options="{options}"),
    extras=("utterance",),
)
# Dynamic-SUPERB's dimensions of the registered tasks (SIFT-50M, appendix F.2)
DS_DIMENSIONS = {
    "paralinguistic": {
        "ds-accent",
        "ds-emotion",
        "ds-dialogue-emotion",
        "ds-stress",
        "ds-distance",
        "ds-spoof",
        "ds-spoof-2015",
    },
    "semantic": {"ds-dialogue-act", "ds-sarcasm"},
    "speaker": {"ds-multi-speaker-librispeech", "ds-multi-speaker-vctk", "ds-speaker-count"},
}
CARDS: dict[str, Card] = {
    "ds-accent": Card(
        {
            "american": 5936,
            "malayalam": 2393,
            "bangla": 1528,
            "telugu": 1515,
            "australian": 1484,
            "british": 1484,
            "indian": 1484,
            "odiya": 747,
            "welsh": 742,
        },
        "{label}_s{g:02d}_{i:03d}.wav",
        _ASK.format(question="Identify the accent of the English speaker.", options="{options}"),
        seconds=0.2,
    ),
    "ds-emotion": Card(
        {"neutral": 48, "joy": 16, "surprise": 12, "anger": 11, "sadness": 7, "fear": 2.5, "disgust": 2.5},
        "dia{g}_utt{i}.mp4",
        _ASK.format(question="Recognise the emotion of the speaker in this TV dialogue.", options="{options}"),
        seconds=0.2,
    ),
    "ds-dialogue-emotion": Card(
        {"no_emotion": 80, "happiness": 16, "surprise": 2, "sadness": 1.4, "anger": 0.6, "disgust": 0.3, "fear": 0.1},
        "{i}_{s}_d{g}.wav",
        _ASK.format(question="What is the emotion of this dialogue turn?", options="{options}"),
        seconds=0.2,
    ),
    "ds-stress": Card(
        {"one": 38, "two": 38, "three": 16, "four": 4, "zero": 3.4, "five": 0.7},
        "{speaker}/{word}.wav",
        "Please do stress detection in English word. The answer could be {options}.",
        extras=("word",),
        seconds=3.0,
        words={
            "zero": ("a", "the", "of", "to"),
            "one": ("plausible", "table", "happy", "window", "mountain", "yellow", "kitchen", "garden"),
            "two": ("critique", "hotel", "begin", "machine", "police", "guitar", "balloon", "forget"),
            "three": ("undesirable", "understand", "engineer", "volunteer", "afternoon"),
            "four": ("examination", "pronunciation", "communication", "investigation"),
            "five": ("internationality", "individuality", "responsibility", "personality"),
        },
    ),
    "ds-distance": Card(
        {"0.4m": 1, "2.0m": 1, "4.0m": 1},
        "test/3D_SPK_{g:05d}/3D_SPK_{g:05d}_{i:03d}_Device08_Distance13_Dialect12.wav",
        _ASK.format(question="How far is the speaker from the microphone?", options="{options}"),
    ),
    "ds-sarcasm": Card(
        {True: 345, False: 345},  # booleans, as some copies store them
        "{i}_{g}.wav",
        _ASK.format(question="Is the speaker being sarcastic?", options="{options}"),
    ),
    "ds-multi-speaker-librispeech": _MIXTURES,
    "ds-multi-speaker-vctk": _MIXTURES,
    "ds-speaker-count": Card(
        {"one": 1, "two": 1, "three": 1, "four": 1, "five": 1},
        "mixture_{i:04d}.wav",
        _ASK.format(question="How many speakers are in this recording?", options="{options}"),
        extras=("utterance",),
    ),
    "ds-dialogue-act": Card(
        {"inform": 46, "question": 28, "directive": 16, "commissive": 10},
        "{i}_{s}_d{g}.wav",
        _ASK.format(question="Classify the dialogue act of this turn.", options="{options}"),
    ),
    "ds-spoof": Card(
        {"spoofed": 12008, "authentic": 1298},
        "T_{i:07d}.wav",
        _ASK.format(question="Is this recording spoofed or authentic?", options="{options}"),
    ),
    "ds-spoof-2015": Card(
        {"spoofed": 1, "authentic": 1},
        "D{g}_{i:07d}.wav",
        _ASK.format(question="Is this recording spoofed or authentic?", options="{options}"),
    ),
}


def counts(card: Card, total: int) -> dict[object, int]:
    """Rows per label: the card's shares of ``total``, each at least ``MIN_PER_CLASS``."""
    whole = sum(card.shares.values())
    return {label: max(MIN_PER_CLASS, round(total * share / whole)) for label, share in card.shares.items()}


def _wav(label_index: int, seconds: float, rng: np.random.Generator) -> bytes:
    t = np.arange(int(SR * seconds)) / SR
    y = 0.3 * np.sin(2 * np.pi * (150 + 60 * label_index) * t) + 0.01 * rng.standard_normal(len(t))
    buf = io.BytesIO()
    sf.write(buf, y.astype(np.float32), SR, format="WAV")
    return buf.getvalue()


def _utterances(task: str, label: object, g: int, i: int) -> dict[str, str | None]:
    """The ``utterance 1..5`` columns: the talkers' source ids (LibriSpeech, VCTK or LibriTTS)."""
    n = {"true": 2, "false": 1}.get(str(label)) or ("one", "two", "three", "four", "five").index(str(label)) + 1
    speakers = [g, *(100 + (i + k) % 7 for k in range(1, n))]
    ids = {
        "ds-multi-speaker-librispeech": [f"{1000 + s}-13468{k}-{i:04d}" for k, s in enumerate(speakers)],
        "ds-multi-speaker-vctk": [f"p{225 + s:03d}_{i:03d}" for s in speakers],
        "ds-speaker-count": [f"{1000 + s}_134686_{i:06d}_000001" for s in speakers],
    }[task]
    return {f"utterance {k + 1}": (ids[k] if k < n else None) for k in range(5)}


def rows(task: str, total: int = 40, seed: int = 0) -> list[dict]:
    """The fixture's rows (audio as the hub's encoded ``{"bytes", "path"}`` cells)."""
    card, rng = CARDS[task], np.random.default_rng(seed)
    out = []
    for li, (label, n) in enumerate(counts(card, total).items()):
        words = card.words.get(str(label), ())
        for k in range(n):
            i, g = len(out), k % card.groups
            word = words[k % len(words)] if words else None
            speaker = ("yifen", "annar", "tomsk", "lilia")[k % 4]
            name = card.file.format(i=i, g=g, s=k % 2, label=label, word=word, speaker=speaker)
            options = ", ".join(map(str, list(card.shares)[:-1])) + f", or {list(card.shares)[-1]}"
            instruction = card.instruction.format(options=options.lower())
            if task == "ds-stress" and k % 2:  # the card's second instruction style
                instruction = f"Identifying the emphasized syllables in English words. The answer could be {options}."
            row = {
                "file": name,
                "audio": {"bytes": _wav(li, card.seconds, rng), "path": Path(name).name},
                "instruction": instruction,
                "label": label,
            }
            if "word" in card.extras:
                row["word"] = word
            if "utterance" in card.extras:
                row.update(_utterances(task, label, g, i))
            out.append(row)
    return out


def write_copy(task: str, folder: Path, total: int = 40, seed: int = 0, rows_: list[dict] | None = None) -> Path:
    """A hub-style parquet folder of ``task``'s fixture (``folder/data/test-00000-of-00001.parquet``)."""
    from datasets import Audio, Dataset

    (folder / "data").mkdir(parents=True, exist_ok=True)
    ds = Dataset.from_list(rows_ if rows_ is not None else rows(task, total, seed)).cast_column("audio", Audio())
    ds.to_parquet(str(folder / "data" / "test-00000-of-00001.parquet"))
    return folder
