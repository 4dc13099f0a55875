"""The study's Dynamic-SUPERB tasks, registered by short name (``ds-...``).

Every Dynamic-SUPERB dataset on the hub (``DynamicSuperb/<Task>_<Dataset>``) has one ``test``
split with the columns ``file``, ``audio``, ``instruction`` and ``label`` (a few add extras such as
``word``). None has a speaker column; where the ``file`` name carries a speaker or session id,
``group_pattern`` extracts it, so folds are grouped. Elsewhere the run warns about speaker leakage.
A row whose file name the pattern does not match is a group of its own (never one shared "unknown"
group); the run counts such rows in manifest.json (``tasks[t].group_unmatched``). Where the groups are
dialogues whose speakers recur across dialogues, ``group_caveat`` says so (datasheet line and report).

Labels are normalised (case, whitespace), then mapped from Dynamic-SUPERB spellings to the
canonical label set below (``label_map``); the original spelling stays in
``Clip.meta["label_original"]``. Rows whose label is still outside the set are skipped with a
reason naming the row (counted in manifest.json).
"""

from __future__ import annotations

import re

from .source import normalise_label
from .tasks import Task, register

HUB_PREFIX = "DynamicSuperb/"

_NUMBERS = ("zero", "one", "two", "three", "four", "five")


def _spellings(canonical: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """``{canonical: (variant, ...)}`` -> ``{normalised variant: canonical}``."""
    out: dict[str, str] = {}
    for label, variants in canonical.items():
        for v in variants:
            out[normalise_label(v)] = label
    return out


def _numbers(labels: tuple[str, ...]) -> dict[str, str]:
    """Digits ("0", "3") map to the number words."""
    return _spellings({w: (str(_NUMBERS.index(w)),) for w in labels})


def _distances(metres: tuple[str, ...]) -> dict[str, str]:
    """ "0.4m" <- "0.4 m", "0.4", "0.4 meters", "0.40m"; "2.0m" <- "2m", "2 m", "2", ..."""
    out = {}
    for canon in metres:
        x = float(canon.rstrip("m"))
        numbers = {f"{x:g}", f"{x:.1f}", f"{x:.2f}"}
        for n in numbers:
            for unit in ("m", " m", " meter", " meters", " metre", " metres", ""):
                out[normalise_label(n + unit)] = canon
    return out


_TRUE_FALSE = {"true": ("yes", "1"), "false": ("no", "0")}
_SHARED = (
    "folds are grouped by dialogue, but {what}: the same speakers are in training and test folds, so "
    "speaker identity can leak into the scores"
)

TASKS: tuple[Task, ...] = (
    Task(
        name="ds-accent",
        labels=("american", "australian", "bangla", "british", "indian", "malayalam", "odiya", "telugu", "welsh"),
        paralinguistic=True,
        source=HUB_PREFIX + "AccentClassification_AccentdbExtended",
        cue="accent of read English (AccentDB extended): segmental and prosodic pronunciation; each speaker has "
        "one accent, so folds are grouped by the speaker in the file name (bangla_s01_...)",
        label_map=_spellings({"bangla": ("bengali",), "odiya": ("oriya", "odia")}),
        group_pattern=r"([A-Za-z]+_s\d+)_\d+",
    ),
    Task(
        name="ds-emotion",
        labels=("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"),
        paralinguistic=True,
        source=HUB_PREFIX + "EmotionRecognition_MultimodalEmotionlinesDataset",
        cue="emotion in acted TV dialogue (MELD, Friends): prosody and voice quality, but the words carry it "
        "too; folds are grouped by dialogue (diaN in the file name), and the six main characters speak in "
        "many dialogues, so held-out dialogues do not hold their speakers out",
        label_map=_spellings(
            {
                "anger": ("angry",),
                "disgust": ("disgusted",),
                "fear": ("fearful", "scared"),
                "joy": ("happy", "happiness", "joyful"),
                "neutral": ("no emotion", "neutrality"),
                "sadness": ("sad",),
                "surprise": ("surprised",),
            }
        ),
        group_pattern=r"(dia\d+)_utt",
        group_caveat=_SHARED.format(what="MELD's main characters (Friends) speak in many dialogues"),
    ),
    Task(
        name="ds-dialogue-emotion",
        labels=("anger", "disgust", "fear", "sadness", "happiness", "surprise", "no emotion"),
        paralinguistic=True,
        source=HUB_PREFIX + "DialogueEmotionClassification_DailyTalk",
        cue="emotion of a dialogue turn (DailyTalk: DailyDialog text read by two voice actors); the labels "
        "come from the text, so wording carries them as much as prosody; folds are grouped by dialogue "
        "(the _dN in the file name), but the same two voice actors read every dialogue, so speakers are "
        "shared between training and test folds",
        label_map=_spellings(
            {
                "anger": ("angry",),
                "disgust": ("disgusted",),
                "fear": ("fearful", "scared"),
                "sadness": ("sad",),
                "happiness": ("happy", "joy"),
                "surprise": ("surprised",),
                "no emotion": ("neutral", "none", "no_emotion", "no-emotion", "noemotion"),
            }
        ),
        group_pattern=r"_(d\d+)\.\w+$",
        group_caveat=_SHARED.format(what="DailyTalk's two voice actors read every dialogue"),
    ),
    Task(
        name="ds-stress",
        labels=_NUMBERS,
        paralinguistic=True,
        source=HUB_PREFIX + "StressDetection_MIRSD",
        cue="position (zero..five) of the emphasised word in a read sentence (MIR-SD): pitch, duration and "
        "loudness of that word; the extra column `word` is kept in meta",
        label_map=_numbers(_NUMBERS),
    ),
    Task(
        name="ds-distance",
        labels=("0.4m", "2.0m", "4.0m"),
        paralinguistic=True,
        source=HUB_PREFIX + "HowFarAreYou_3DSpeaker",
        cue="speaker-to-microphone distance (3D-Speaker): level, reverberation and direct-to-reverberant "
        "ratio, not the speech itself; folds are grouped by speaker (3D_SPK_N in the file path)",
        label_map=_distances(("0.4m", "2.0m", "4.0m")),
        group_pattern=r"(3D_SPK_\d+)",
    ),
    Task(
        name="ds-sarcasm",
        labels=("true", "false"),
        paralinguistic=True,
        source=HUB_PREFIX + "SarcasmDetection_Mustard",
        cue="sarcasm in TV-show utterances (MUStARD): tone of voice, but mostly the words and their context",
        label_map=_spellings({"true": ("yes", "1", "sarcastic"), "false": ("no", "0", "not sarcastic")}),
    ),
    Task(
        name="ds-multi-speaker-librispeech",
        labels=("true", "false"),
        paralinguistic=True,
        source=HUB_PREFIX + "MultiSpeakerDetection_LibriSpeech-TestClean",
        cue="one talker vs. more than one (LibriSpeech test-clean mixtures): overlapping voices and "
        "speaker-change cues, not the words",
        label_map=_spellings(_TRUE_FALSE),
    ),
    Task(
        name="ds-multi-speaker-vctk",
        labels=("true", "false"),
        paralinguistic=True,
        source=HUB_PREFIX + "MultiSpeakerDetection_VCTK",
        cue="one talker vs. more than one (VCTK mixtures): overlapping voices and speaker-change cues, not the words",
        label_map=_spellings(_TRUE_FALSE),
    ),
    Task(
        name="ds-speaker-count",
        labels=_NUMBERS[1:],
        paralinguistic=True,
        source=HUB_PREFIX + "SpeakerCounting_LibriTTS-TestClean",
        cue="number of talkers (one..five) in a LibriTTS test-clean mixture: how many distinct voices; the "
        "extra `utterance N` columns are kept in meta",
        label_map=_numbers(_NUMBERS[1:]),
    ),
    Task(
        name="ds-dialogue-act",
        labels=("question", "inform", "directive", "commissive"),
        paralinguistic=False,
        source=HUB_PREFIX + "DialogueActClassification_DailyTalk",
        cue="dialogue act of a turn (DailyTalk): mostly the wording, partly intonation (questions); "
        "folds are grouped by dialogue (the _dN in the file name), but the same two voice actors read every "
        "dialogue, so speakers are shared between training and test folds",
        label_map=_spellings({"question": ("questions",), "inform": ("information", "statement")}),
        group_pattern=r"_(d\d+)\.\w+$",
        group_caveat=_SHARED.format(what="DailyTalk's two voice actors read every dialogue"),
    ),
    Task(
        name="ds-spoof",
        labels=("spoofed", "authentic"),
        paralinguistic=True,
        source=HUB_PREFIX + "SpoofDetection_ASVspoof2017",
        cue="genuine speech vs. replayed recordings (ASVspoof 2017): channel, loudspeaker and room "
        "artefacts, not the words",
        label_map=_spellings(
            {
                "spoofed": ("spoof", "spoofing", "fake", "replay", "replayed"),
                "authentic": ("bonafide", "bona fide", "bona-fide", "genuine", "real", "human"),
            }
        ),
    ),
)

for _task in TASKS:
    register(_task)

_OPTIONS = re.compile(r"the answer could be (.+?)\.?\s*$", re.IGNORECASE | re.DOTALL)


def answer_options(instruction: str | None) -> list[str]:
    """The answer options at the end of a Dynamic-SUPERB instruction, normalised.

    "... The answer could be question, inform, directive, or commissive." ->
    ["question", "inform", "directive", "commissive"]; [] when the instruction has none.
    """
    m = _OPTIONS.search(instruction or "")
    if not m:
        return []
    parts = re.split(r",\s*(?:or\s+)?|\s+or\s+", m.group(1))
    return [normalise_label(p) for p in parts if p.strip()]
