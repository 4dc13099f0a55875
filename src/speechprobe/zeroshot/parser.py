"""Map a model's free-text answer onto a task's label set, deterministically.

``parse_answer(text, labels, synonyms)`` tries, in order:

1. ``exact``: the answer, stripped of surrounding white space, is a label as written.
2. ``normalised``: the answer's *core* equals a label after normalisation. Normalisation lower-cases,
   folds accents and Unicode forms, turns punctuation into spaces (keeping decimal points), splits
   numbers from units (``0.4m`` -> ``0.4 m``), writes numbers in one canonical form whether they
   came as digits or words (``zero point four`` == ``0.4`` == ``0.40``; ``two`` == ``2`` == ``2.0``)
   and canonicalises a unit that follows a number (``m``/``meter``/``metres`` -> ``m``). The core
   drops a leading preamble (``Answer:``, ``The answer is``, ``Label:``), an option marker
   (``(B)``, ``B)``, ``B.``) and trailing punctuation.
3. ``synonym``: the core equals one of a label's synonyms (the task's synonym table, see
   ``synonyms_for``), normalised the same way.
4. ``mention``: the answer mentions exactly one label (or synonyms of one label) anywhere, on
   whole-token boundaries (so ``female`` never matches ``male``); at one position the longest
   mention wins (``en-gb-scotland`` over ``en-gb``). A mention within two tokens after a negation
   (``not``, ``never``, ``nor``, ``neither``, ``n't``: "not angry", "not really angry") does not count.

An answer that names more than one label is ``ambiguous``: a parse failure, because a model that
echoes the prompt ("neutral, happy, sad or angry", "Is the speaker male or female?") has not
answered, and taking the first label would credit it with whichever label the prompt lists first.
Anything else, including an empty answer, is a failure too (``empty``, ``unparsed``). A failure has
``label=None``: it is scored as wrong, and the share of answers that parse is the ``parse_rate``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

NEGATION_REACH = 2  # tokens after a negation whose mentions do not count

_UNITS: dict[str, str] = {}
for _canon, _spellings in {
    "m": ("m", "meter", "meters", "metre", "metres", "mtr", "mtrs"),
    "cm": ("cm", "centimeter", "centimeters", "centimetre", "centimetres"),
    "mm": ("mm", "millimeter", "millimeters", "millimetre", "millimetres"),
    "km": ("km", "kilometer", "kilometers", "kilometre", "kilometres"),
    "ft": ("ft", "foot", "feet"),
    "s": ("s", "sec", "secs", "second", "seconds"),
    "ms": ("ms", "millisecond", "milliseconds"),
    "min": ("min", "mins", "minute", "minutes"),
    "hz": ("hz", "hertz"),
    "khz": ("khz", "kilohertz"),
    "db": ("db", "decibel", "decibels"),
    "percent": ("percent", "pct"),
}.items():
    for _s in _spellings:
        _UNITS[_s] = _canon

_ONES = {
    "zero": 0,
    "nought": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_DIGIT_WORDS = {w: v for w, v in _ONES.items() if v < 10}
_NEGATIONS = {"not", "never", "nor", "neither", "t"}  # "isn't" -> "isn t"
_PREAMBLE = re.compile(
    r"^\s*(?:(?:the|my|final|predicted|correct)\s+)*(?:answer|label|prediction|response|output|class|choice)"
    r"(?:\s+(?:is|would\s+be|:))?\s*[:\-=]?\s*",
    re.IGNORECASE,
)
_OPTION = re.compile(r"^\s*(?:\(\s*[a-hA-H]\s*\)|[a-hA-H]\)|[A-H][.:](?=\s))\s*")
_DECIMAL = "\u2396"  # a placeholder for decimal points while punctuation is stripped


@dataclass(frozen=True)
class ParseResult:
    """The parsed label (None: parse failure) and the rule that produced it."""

    label: str | None
    rule: str  # exact, normalised, synonym or mention; on failure empty, ambiguous or unparsed


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text))
    return "".join(ch for ch in text if not unicodedata.combining(ch)).lower()


def _number(text: str) -> str | None:
    """Canonical decimal spelling of a digit token (``2.0`` -> ``2``, ``0.40`` -> ``0.4``), else None."""
    if not re.fullmatch(r"\d+(?:\.\d+)?", text):
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex only lets numbers through
        return None
    out = format(value.normalize(), "f")
    return out


def _words_number(tokens: Sequence[str], i: int) -> tuple[str, int] | None:
    """A number spelled in words starting at ``tokens[i]``: (canonical digits, tokens used)."""
    total, current, j, last = 0, 0, i, None  # last: kind of the previous number word
    while j < len(tokens):
        tok = tokens[j]
        if tok in _ONES:
            if last in ("unit", "teen") or (last == "ten" and _ONES[tok] >= 10):
                break  # "two three" are two numbers
            current += _ONES[tok]
            last = "teen" if _ONES[tok] >= 10 else "unit"
        elif tok in _TENS:
            if last in ("unit", "teen", "ten"):
                break
            current += _TENS[tok]
            last = "ten"
        elif tok in _SCALES and last is not None:
            if _SCALES[tok] == 100:
                current = max(current, 1) * 100
            else:
                total += max(current, 1) * _SCALES[tok]
                current = 0
            last = "scale"
        elif (
            tok == "and"
            and last == "scale"
            and j + 1 < len(tokens)
            and (tokens[j + 1] in _ONES or tokens[j + 1] in _TENS)
        ):
            pass
        else:
            break
        j += 1
    if last is None:
        return None
    value = str(total + current)
    # "point" followed by digit words: a decimal fraction ("zero point four")
    if j + 1 < len(tokens) and tokens[j] == "point" and tokens[j + 1] in _DIGIT_WORDS:
        k, digits = j + 1, []
        while k < len(tokens) and tokens[k] in _DIGIT_WORDS:
            digits.append(str(_DIGIT_WORDS[tokens[k]]))
            k += 1
        return _number(f"{value}.{''.join(digits)}") or value, k - i
    return value, j - i


def normalise(text: str) -> tuple[str, ...]:
    """The normalised token sequence of ``text`` (see the module docstring)."""
    text = _fold(text)
    text = re.sub(r"(?<=\d)[.,](?=\d)", _DECIMAL, text)
    text = re.sub(r"(?<=\d)(?=[a-z])|(?<=[a-z])(?=\d)", " ", text)
    text = re.sub(rf"[^\w{_DECIMAL}]+|_", " ", text)
    raw = text.replace(_DECIMAL, ".").split()
    out: list[str] = []
    i = 0
    while i < len(raw):
        tok = raw[i]
        digits = _number(tok)
        if digits is not None:
            out.append(digits)
            i += 1
            continue
        spelled = _words_number(raw, i)
        if spelled is not None:
            out.append(spelled[0])
            i += spelled[1]
            continue
        if out and _UNITS.get(tok) and _number(out[-1]) is not None:
            out.append(_UNITS[tok])
        else:
            out.append(tok)
        i += 1
    return tuple(out)


def core(text: str) -> tuple[str, ...]:
    """``normalise`` of the answer without a leading preamble or option marker."""
    stripped = text.strip()
    for _ in range(2):  # "Answer: (B) x" and "(B) Answer: x"
        stripped = _PREAMBLE.sub("", stripped, count=1)
        stripped = _OPTION.sub("", stripped, count=1)
    return normalise(stripped)


# -- synonym tables ---------------------------------------------------------------------------

#: Per-task synonyms: task name -> label -> other ways to say it.
TASK_SYNONYMS: dict[str, dict[str, tuple[str, ...]]] = {
    "emotion": {
        "neutral": ("calm", "no emotion", "emotionless", "flat", "normal"),
        "happy": ("happiness", "joy", "joyful", "cheerful", "excited", "glad", "delighted"),
        "sad": ("sadness", "unhappy", "sorrow", "sorrowful", "depressed", "melancholy", "upset"),
        "angry": ("anger", "mad", "furious", "annoyed", "irritated", "frustrated", "rage"),
    },
    "gender": {
        "male": ("man", "men", "masculine", "boy", "guy", "gentleman"),
        "female": ("woman", "women", "feminine", "girl", "lady"),
    },
    "accent": {
        "en-us": ("american", "us english", "general american", "united states", "america"),
        "en-gb": ("british", "english accent", "uk", "england", "united kingdom"),
        "en-gb-scotland": ("scottish", "scotland", "scots"),
        "en-029": ("caribbean", "west indian", "jamaican"),
        "en-gb-x-rp": ("received pronunciation", "rp", "queen s english", "posh"),
    },
    "distance": {
        "0.4m": ("close", "near", "very close", "nearby"),
        "2.0m": ("medium", "moderate distance", "middle"),
        "4.0m": ("far", "far away", "distant", "very far"),
    },
    "multi_speaker": {
        "true": ("yes", "multiple speakers", "two speakers", "more than one", "several speakers", "overlapping"),
        "false": ("no", "single speaker", "one speaker", "only one", "just one"),
    },
    "speaker_count": {
        "1": ("single", "alone", "a single speaker", "one person", "only one"),
        "2": ("a pair", "couple", "pair"),
    },
    "spoof": {
        "authentic": ("real", "genuine", "bona fide", "bonafide", "human", "original", "natural", "not spoofed"),
        "spoofed": ("fake", "spoof", "synthetic", "synthesized", "synthesised", "manipulated", "forged", "replayed"),
    },
    "dialogue_act": {
        "question": ("interrogative", "asking", "query", "inquiry"),
        "statement": ("declarative", "assertion", "declaration", "fact"),
        "command": ("imperative", "order", "instruction", "request", "demand"),
    },
    "language": {
        "english": ("en", "eng", "anglais", "englisch", "ingles"),
        "german": ("de", "deutsch", "allemand", "aleman"),
        "french": ("fr", "francais", "franzosisch", "frances"),
        "spanish": ("es", "espanol", "castellano", "spanisch", "espagnol"),
    },
    "spoken_word": {
        "yes": ("yeah", "yep", "yup"),
        "no": ("nope", "nah"),
        "go": ("go go",),
    },
}

#: Synonyms by label, used for any task whose own table lacks that label (e.g. Dynamic-SUPERB).
LABEL_SYNONYMS: dict[str, tuple[str, ...]] = {
    **TASK_SYNONYMS["emotion"],
    **TASK_SYNONYMS["gender"],
    **TASK_SYNONYMS["spoof"],
    **TASK_SYNONYMS["dialogue_act"],
    **TASK_SYNONYMS["language"],
    "bonafide": TASK_SYNONYMS["spoof"]["authentic"],
    "spoof": TASK_SYNONYMS["spoof"]["spoofed"],
    "anger": ("angry", "mad", "furious", "annoyed", "irritated"),
    "joy": ("happy", "happiness", "joyful", "cheerful", "glad"),
    "happiness": ("happy", "joy", "joyful", "cheerful", "glad"),
    "sadness": ("sad", "unhappy", "sorrowful", "depressed"),
    "no emotion": ("neutral", "calm", "emotionless"),
    "fear": ("fearful", "afraid", "scared", "frightened", "anxious"),
    "disgust": ("disgusted", "revulsion"),
    "surprise": ("surprised", "astonished", "amazed"),
}


def synonyms_for(
    task: str | None, labels: Iterable[str], extra: Mapping[str, Iterable[str]] | None = None
) -> dict[str, tuple[str, ...]]:
    """The synonym table used for ``task``: its own entries, else ``LABEL_SYNONYMS``, plus ``extra``."""
    own = TASK_SYNONYMS.get(task or "", {})
    out: dict[str, tuple[str, ...]] = {}
    for label in labels:
        found = own.get(label)
        if found is None:
            found = LABEL_SYNONYMS.get(label) or LABEL_SYNONYMS.get(" ".join(normalise(label)), ())
        out[label] = tuple(found) + tuple((extra or {}).get(label, ()))
    return out


class AnswerParser:
    """A compiled parser for one label set (reuse it for every answer of a task)."""

    def __init__(self, labels: Sequence[str], synonyms: Mapping[str, Iterable[str]] | None = None) -> None:
        self.labels = tuple(labels)
        self._label_forms: dict[tuple[str, ...], str] = {}
        for label in self.labels:
            self._label_forms.setdefault(normalise(label), label)
        # synonyms: forms claimed by a label itself, or by two labels, are dropped (ambiguous)
        claims: dict[tuple[str, ...], set[str]] = {}
        for label, words in (synonyms or {}).items():
            if label not in self.labels:
                continue
            for word in words:
                form = normalise(word)
                if form and form not in self._label_forms:
                    claims.setdefault(form, set()).add(label)
        self._synonym_forms = {form: next(iter(ls)) for form, ls in claims.items() if len(ls) == 1}
        self._mentions = sorted(
            [(form, label, "label") for form, label in self._label_forms.items() if form]
            + [(form, label, "synonym") for form, label in self._synonym_forms.items()],
            key=lambda m: -len(m[0]),
        )

    def __call__(self, text: str | None) -> ParseResult:
        if text is None or not text.strip():
            return ParseResult(None, "empty")
        if text.strip() in self.labels:
            return ParseResult(text.strip(), "exact")
        answer = core(text)
        if answer in self._label_forms:
            return ParseResult(self._label_forms[answer], "normalised")
        if answer in self._synonym_forms:
            return ParseResult(self._synonym_forms[answer], "synonym")
        named = self._mentioned(normalise(text))
        if len(named) == 1:
            return ParseResult(named.pop(), "mention")
        return ParseResult(None, "ambiguous" if named else "unparsed")

    def _mentioned(self, tokens: tuple[str, ...]) -> set[str]:
        """The labels named anywhere in ``tokens`` (longest mention at each position); a negation cancels
        the one mention that starts within ``NEGATION_REACH`` tokens after it."""
        named: set[str] = set()
        start, negated_before = 0, -1
        while start < len(tokens):
            found: tuple[int, set[str]] | None = None
            for form, label, _ in self._mentions:  # longest first
                if found is not None and len(form) < found[0]:
                    break
                if tokens[start : start + len(form)] == form:
                    found = (len(form), {label}) if found is None else (found[0], found[1] | {label})
            if found is None:
                if tokens[start] in _NEGATIONS:
                    negated_before = start + 1 + NEGATION_REACH
                start += 1
                continue
            if start >= negated_before:
                named |= found[1]
            negated_before = -1
            start += found[0]
        return named


def parse_answer(
    text: str | None, labels: Sequence[str], synonyms: Mapping[str, Iterable[str]] | None = None
) -> ParseResult:
    """Parse one answer (see the module docstring); build an ``AnswerParser`` to parse many."""
    return AnswerParser(labels, synonyms)(text)
