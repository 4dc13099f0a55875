"""The study's Dynamic-SUPERB tasks, registered by short name (``ds-...``), as the public dataset cards state them.

Every Dynamic-SUPERB dataset on the hub (``DynamicSuperb/<Task>_<Dataset>``) has one ``test``
split of 200 rows with the columns ``file``, ``audio``, ``instruction`` and ``label`` (a few add
extras such as ``word`` or ``utterance 1..5``). None has a speaker column: each task declares where
its groups come from (``Task.groupings``: a path part of ``file``, the ``word`` column, the
``utterance 1`` column), the first being the default and ``--group-by`` choosing another. A row whose
value the pattern does not match is a group of its own (never one shared "unknown" group); the run
counts such rows in manifest.json (``tasks[t].group_unmatched``). Where the groups are dialogues whose
speakers recur across dialogues, the grouping's caveat says so (datasheet line and report).

Each task's ``dimension`` is its place in Dynamic-SUPERB's taxonomy (SIFT-50M, appendix F.2):
paralinguistic (accent, both emotion sets, stress, distance, both spoof sets), semantic (dialogue
act, sarcasm) or speaker (multi-speaker detection, speaker counting). ``card`` lists the facts taken
from the dataset cards; ``unverified`` what no card states (docs/tasks.md lists both). No task pins a
``revision`` yet: ``--tasks ds-stress@<commit>`` pins one per run.

Labels are normalised (case, whitespace), then mapped from the spellings seen in the wild to the
canonical label set below (``label_map``); the original spelling stays in
``Clip.meta["label_original"]``. Rows whose label is still outside the set are skipped with a reason
naming the row (counted in manifest.json), and a task where more than a small share of rows are
outside stops before extraction (``data/labels.py``).
"""

from __future__ import annotations

from typing import Any

from .source import normalise_label
from .tasks import Grouping, Task, register

HUB_PREFIX = "DynamicSuperb/"
CARD = "every card: one test split of 200 rows, columns file, audio, instruction, label"

_NUMBERS = ("zero", "one", "two", "three", "four", "five")
_ORDINALS = ("no", "first", "second", "third", "fourth", "fifth")


def _hub(dataset: str, **declared: Any) -> Task:
    """The task of hub dataset ``DynamicSuperb/<dataset>``, paralinguistic unless ``declared`` says otherwise."""
    return Task(source=HUB_PREFIX + dataset, **{"dimension": "paralinguistic", **declared})


def _spellings(canonical: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """``{canonical: (variant, ...)}`` -> ``{normalised variant: canonical}``."""
    out: dict[str, str] = {}
    for label, variants in canonical.items():
        for v in variants:
            out[normalise_label(v)] = label
    return out


def _numbers(labels: tuple[str, ...]) -> dict[str, str]:
    """Digits ("0", "3", "3.0") map to the number words."""
    return _spellings({w: (str(_NUMBERS.index(w)), f"{_NUMBERS.index(w)}.0") for w in labels})


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


_TRUE_FALSE = {"true": ("yes", "1", "1.0"), "false": ("no", "0", "0.0")}  # booleans arrive as True/False/1/0
_SHARED = (
    "folds are grouped by dialogue, but {what}: the same speakers are in training and test folds, so "
    "speaker identity can leak into the scores"
)
_EMOTIONS = {
    "anger": ("angry",),
    "disgust": ("disgusted",),
    "fear": ("fearful", "scared"),
    "sadness": ("sad",),
    "surprise": ("surprised",),
}
_DAILYTALK = {  # DailyTalk file names: turn_speaker_dN.wav; the same two voice actors read every dialogue
    "dialogue": Grouping(
        pattern=r"_(d\d+)\.\w+$", caveat=_SHARED.format(what="DailyTalk's two voice actors read every dialogue")
    ),
    "speaker": Grouping(pattern=r"^\d+_(\d+)_d\d+"),
}
_DAILYTALK_CARD = ("file names turn_speaker_dN.wav; the same two voice actors read every dialogue",)
# A mixture's group is its first utterance's speaker (where the copy has the column): the other talkers
# of a mixture may recur in other groups.
_FIRST_TALKER = "groups are the first talker of each mixture; the other talkers may recur in other groups"
_SPOOF = {
    "labels": ("spoofed", "authentic"),
    "dimension": "paralinguistic",
    "label_map": _spellings(
        {
            "spoofed": ("spoof", "spoofing", "fake", "replay", "replayed"),
            "authentic": ("bonafide", "bona fide", "bona-fide", "genuine", "real", "human"),
        }
    ),
    "display_names": {"spoofed": "spoofed (replayed)", "authentic": "genuine"},
    "verbalisers": {"spoofed": ("spoofed", "replayed"), "authentic": ("authentic", "genuine")},
    "label_semantics": "spoofed: a replayed or synthesised recording; authentic: genuine speech",
    "question": "Is this recording authentic or spoofed?",
}


def _multi_speaker(name: str, hub: str, corpus: str, pattern: str, ids: str) -> Task:
    """A MultiSpeakerDetection task: one talker or more, grouped by the first talker where the copy says."""
    return _hub(
        f"MultiSpeakerDetection_{hub}",
        name=f"ds-multi-speaker-{name}",
        labels=("true", "false"),
        dimension="speaker",
        cue=f"one talker vs. more than one ({corpus} mixtures): overlapping voices and speaker-change cues, not "
        "the words; grouped by the first talker (`utterance 1`) where the copy has it",
        label_map=_spellings(_TRUE_FALSE),
        groupings={"speaker": Grouping("utterance 1", pattern, optional=True, caveat=_FIRST_TALKER)},
        display_names={"true": "several speakers", "false": "one speaker"},
        verbalisers={"true": ("yes", "more than one speaker"), "false": ("no", "one speaker")},
        label_semantics="true: the clip holds more than one talker; false: one talker",
        question="Is more than one person speaking in this recording?",
        card=(CARD, "labels true / false", f"extra `utterance 1..5` columns may hold {ids}", "DS dimension: speaker"),
        unverified=("the `utterance N` columns and their id format",),
    )


TASKS: tuple[Task, ...] = (
    _hub(
        "AccentClassification_AccentdbExtended",
        name="ds-accent",
        labels=("american", "australian", "bangla", "british", "indian", "malayalam", "odiya", "telugu", "welsh"),
        cue="accent of read English (AccentDB extended): segmental and prosodic pronunciation; each speaker has "
        "one accent, so folds are grouped by the speaker in the file name (bangla_s01_...); welsh and odiya "
        "have about one speaker each, so speaker-grouped folds cannot test them across speakers",
        label_map=_spellings({"bangla": ("bengali",), "odiya": ("oriya", "odia")}),
        groupings={"speaker": Grouping(pattern=r"([A-Za-z]+_s\d+)_\d+")},
        display_names={
            **{x: f"{x.capitalize()} English" for x in ("american", "australian", "british", "indian", "welsh")},
            **{x: f"English, {x.capitalize()} speaker" for x in ("bangla", "malayalam", "odiya", "telugu")},
        },
        verbalisers={
            **{
                x: (f"{x.capitalize()} English", x.capitalize())
                for x in ("american", "australian", "british", "indian")
            },
            "welsh": ("Welsh English", "Welsh"),
            **{
                x: (f"{x.capitalize()} accented English", x.capitalize())
                for x in ("bangla", "malayalam", "odiya", "telugu")
            },
        },
        label_semantics="the accent (native language or region) of the speaker of read English",
        question="Which accent does the speaker of this English recording have?",
        card=(
            CARD,
            "9 accents: american, australian, bangla, british, indian, malayalam, odiya, telugu, welsh",
            "full set (17313): american 5936, malayalam 2393, bangla 1528, telugu 1515, australian/british/indian "
            "1484 each, odiya 747, welsh 742",
            "class counts are multiples of ~742 clips per speaker: welsh and odiya about 1 speaker each (inferred)",
        ),
        unverified=("the speaker in the file name (bangla_s01_321.wav) is this project's reading of AccentDB",),
    ),
    _hub(
        "EmotionRecognition_MultimodalEmotionlinesDataset",
        name="ds-emotion",
        labels=("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"),
        cue="emotion in acted TV dialogue (MELD, Friends): prosody and voice quality, but the words carry it "
        "too; folds are grouped by dialogue (diaN in the file name), and the six main characters speak in "
        "many dialogues, so held-out dialogues do not hold their speakers out",
        label_map=_spellings({**_EMOTIONS, "joy": ("happy", "happiness", "joyful"), "neutral": ("no emotion",)}),
        groupings={
            "dialogue": Grouping(
                pattern=r"(dia\d+)_utt",
                caveat=_SHARED.format(what="MELD's main characters (Friends) speak in many dialogues")
                + "; 3426 rows match no single MELD split (likely dev + test), so dialogue ids may collide",
            )
        },
        label_semantics="the emotion of one utterance in a TV dialogue (annotated from audio, video and text)",
        question="What emotion does the speaker express?",
        card=(
            CARD,
            "labels anger, disgust, sadness, joy, neutral, surprise, fear",
            "full set (3426): neutral 48 %, joy 16, surprise 12, anger 11, sadness 7, fear 2.5, disgust 2.5",
            "diaN dialogue ids; 3426 matches no single MELD split (likely dev + test), so ids may collide",
        ),
        unverified=("file names diaN_uttM",),
    ),
    _hub(
        "DialogueEmotionClassification_DailyTalk",
        name="ds-dialogue-emotion",
        labels=("anger", "disgust", "fear", "sadness", "happiness", "surprise", "no_emotion"),
        cue="emotion of a dialogue turn (DailyTalk: DailyDialog text read by two voice actors); the labels "
        "come from the text, so wording carries them as much as prosody; folds are grouped by dialogue "
        "(the _dN in the file name), but the same two voice actors read every dialogue, so speakers are "
        "shared between training and test folds; 80 % of turns are no_emotion",
        label_map=_spellings(
            {
                **_EMOTIONS,
                "happiness": ("happy", "joy"),
                "no_emotion": ("no emotion", "neutral", "none", "no-emotion", "noemotion"),
            }
        ),
        groupings=_DAILYTALK,
        display_names={"no_emotion": "no emotion"},
        verbalisers={"no_emotion": ("no emotion", "neutral")},
        label_semantics="the emotion of a dialogue turn, from DailyDialog's text annotation; no_emotion: none",
        question="What emotion does the speaker express in this dialogue turn?",
        card=(
            CARD,
            "labels anger, disgust, fear, sadness, happiness, surprise, no_emotion (underscore)",
            "full set (4758): no_emotion 80 %, happiness 16, surprise 2, sadness 1.4, anger 0.6, disgust 0.3, "
            "fear 3 rows; majority baseline 0.80",
            *_DAILYTALK_CARD,
        ),
    ),
    _hub(
        "StressDetection_MIRSD",
        name="ds-stress",
        labels=_NUMBERS,
        cue="which syllable of one English word carries lexical stress (MIRSD: single words read in 3-second "
        "clips): pitch, duration and loudness of that syllable; a word's stress position is fixed, so the word "
        "itself gives the label away: folds are grouped by word (`word` column) by default, or by the reader "
        "(the first path part of `file`) with --group-by speaker",
        label_map=_numbers(_NUMBERS),
        groupings={"word": Grouping(column="word"), "speaker": Grouping(pattern=r"^([^/]+)/")},
        display_names={w: f"{o} syllable ({w})" for w, o in zip(_NUMBERS, _ORDINALS)},
        verbalisers={w: (w, f"the {o} syllable") for w, o in zip(_NUMBERS[1:], _ORDINALS[1:])},
        label_semantics="1-based position of the stressed syllable in one English word "
        '("undesirable" -> three, "plausible" -> one, "critique" -> two)',
        question="Which syllable of this English word is stressed? Give its position, counting from one.",
        card=(
            CARD + ", plus word",
            "label zero..five = 1-based position of the stressed syllable in one English word (undesirable -> "
            "three, plausible -> one, critique -> two)",
            "full set (4492): one 38 %, two 38 %, three 16 %, four 4 %, zero 3.4 %, five 0.7 %",
            "file = speaker/word.wav (yifen/, annar/); all clips 3.0 s",
            'instructions: "Please do stress detection in English word", "identifying the emphasized syllables '
            'in English words"',
        ),
        unverified=("what label zero means in a 1-based scheme (3.4 % of rows)",),
    ),
    _hub(
        "HowFarAreYou_3DSpeaker",
        name="ds-distance",
        labels=("0.4m", "2.0m", "4.0m"),
        cue="speaker-to-microphone distance (3D-Speaker): level, reverberation and direct-to-reverberant "
        "ratio, not the speech itself; folds are grouped by speaker (3D_SPK_N in the file path)",
        label_map=_distances(("0.4m", "2.0m", "4.0m")),
        groupings={"speaker": Grouping(pattern=r"(3D_SPK_\d+)")},
        display_names={"0.4m": "close (0.4 m)", "2.0m": "medium (2 m)", "4.0m": "far (4 m)"},
        verbalisers={
            "0.4m": ("close", "close, about 40 cm"),
            "2.0m": ("medium distance", "about 2 metres away"),
            "4.0m": ("far", "far away, about 4 metres"),
        },
        label_semantics="distance from the speaker to the microphone: 0.4, 2.0 or 4.0 metres",
        question="How far is the speaker from the microphone?",
        card=(
            CARD,
            "labels 0.4m, 2.0m, 4.0m (per the instruction)",
            "earlier revisions labelled rows 0.0, 0.1, ..., 1.3 (11 values) against that instruction: such a "
            "copy stops before extraction (pin a revision or pass --label-map)",
        ),
        unverified=("3D_SPK_N in the path (plausible)", "that the current upload is fixed"),
    ),
    _hub(
        "SarcasmDetection_Mustard",
        name="ds-sarcasm",
        labels=("true", "false"),
        dimension="semantic",
        cue="sarcasm in TV-show utterances (MUStARD): tone of voice, but mostly the words and their context; "
        "the copy has no speaker column and its characters recur, so folds are ungrouped",
        label_map=_spellings(
            {"true": (*_TRUE_FALSE["true"], "sarcastic"), "false": (*_TRUE_FALSE["false"], "not sarcastic")}
        ),
        display_names={"true": "sarcastic", "false": "not sarcastic"},
        verbalisers={"true": ("sarcastic", "yes"), "false": ("not sarcastic", "no")},
        label_semantics="true: the utterance is sarcastic; false: it is not",
        question="Is the speaker being sarcastic?",
        card=(
            CARD,
            "labels true / false (booleans in some copies); full set 345 / 345",
            "the original has speaker and show columns; the DS copy dropped them; recurring characters",
            "Dynamic-SUPERB dimension: semantics",
        ),
    ),
    _multi_speaker(
        "librispeech",
        "LibriSpeech-TestClean",
        "LibriSpeech test-clean",
        r"^(\d+)-\d+",
        "LibriSpeech ids (speaker-chapter-utterance)",
    ),
    _multi_speaker("vctk", "VCTK", "VCTK", r"(p\d{3})", "VCTK pNNN ids"),
    _hub(
        "SpeakerCounting_LibriTTS-TestClean",
        name="ds-speaker-count",
        labels=_NUMBERS[1:],
        dimension="speaker",
        cue="number of talkers (one..five) in a LibriTTS test-clean mixture: how many distinct voices; grouped "
        "by the first talker (`utterance 1`) where the copy has it",
        label_map=_numbers(_NUMBERS[1:]),
        groupings={"speaker": Grouping("utterance 1", r"^(\d+)[_-]", optional=True, caveat=_FIRST_TALKER)},
        display_names={w: f"{w} speaker{'s' if w != 'one' else ''}" for w in _NUMBERS[1:]},
        verbalisers={w: (w, str(_NUMBERS.index(w))) for w in _NUMBERS[1:]},
        label_semantics="how many different people speak in the mixture (one to five)",
        question="How many people are speaking in this recording?",
        card=(CARD, "labels one ... five, about 20 % each (2000)", "Dynamic-SUPERB dimension: speaker"),
        unverified=("the `utterance N` columns and their LibriTTS id format",),
    ),
    _hub(
        "DialogueActClassification_DailyTalk",
        name="ds-dialogue-act",
        labels=("question", "inform", "directive", "commissive"),
        dimension="semantic",
        cue="dialogue act of a turn (DailyTalk): mostly the wording, partly intonation (questions); "
        "folds are grouped by dialogue (the _dN in the file name), but the same two voice actors read every "
        "dialogue, so speakers are shared between training and test folds",
        label_map=_spellings({"question": ("questions",), "inform": ("information", "statement")}),
        display_names={
            "inform": "statement (inform)",
            "directive": "request (directive)",
            "commissive": "promise (commissive)",
        },
        verbalisers={
            "inform": ("statement", "inform"),
            "directive": ("request", "directive"),
            "commissive": ("promise", "commissive"),
        },
        groupings=_DAILYTALK,
        label_semantics="the dialogue act of a turn: question, inform (statement), directive (request), "
        "commissive (promise)",
        question="Which dialogue act is this turn?",
        card=(
            CARD,
            "labels inform 46 %, question 28, directive 16, commissive 10",
            *_DAILYTALK_CARD,
            "Dynamic-SUPERB dimension: semantics",
        ),
    ),
    _hub(
        "SpoofDetection_ASVspoof2017",
        name="ds-spoof",
        cue="genuine speech vs. replayed recordings (ASVspoof 2017): channel, loudspeaker and room "
        "artefacts, not the words; no speaker information, so folds are ungrouped",
        **_SPOOF,
        card=(CARD, "labels spoofed / authentic; full set spoofed 90 % (12008 / 13306): majority baseline 0.90"),
    ),
    _hub(
        "SpoofDetection_ASVspoof2015",
        name="ds-spoof-2015",
        cue="genuine speech vs. synthesised or converted speech (ASVspoof 2015): vocoder and conversion "
        "artefacts, not the words; no speaker information, so folds are ungrouped",
        **_SPOOF,
        card=(CARD, "labels spoofed / authentic", "Dynamic-SUPERB dimension: paralinguistic"),
        unverified=("class distribution",),
    ),
)

for _task in TASKS:
    register(_task)
