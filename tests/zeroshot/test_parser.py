"""The answer parser: a table of real-looking answers and the label each must map to (or a parse failure)."""

from __future__ import annotations

import pytest

from speechprobe.zeroshot.parser import AnswerParser, normalise, parse_answer, synonyms_for

EMOTION = ("neutral", "happy", "sad", "angry")
ACCENT = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp")
DISTANCE = ("0.4m", "2.0m", "4.0m")
GENDER = ("female", "male")
COUNT = ("1", "2", "3", "4")
MULTI = ("false", "true")
WORDS = ("yes", "no", "up", "down", "left", "right", "stop", "go")
LANGUAGE = ("english", "french", "german", "spanish")
FRENCH = ("colère", "joie", "tristesse")  # a label set in the answer's own language

CASES = [
    # (task, labels, answer, expected label, rule)
    ("emotion", EMOTION, "angry", "angry", "exact"),
    ("emotion", EMOTION, "Angry.", "angry", "normalised"),
    ("emotion", EMOTION, "  HAPPY!  ", "happy", "normalised"),
    ("emotion", EMOTION, "I think the speaker sounds angry.", "angry", "mention"),
    ("emotion", EMOTION, "Answer: sad", "sad", "normalised"),
    ("emotion", EMOTION, "The answer is: Neutral", "neutral", "normalised"),
    ("emotion", EMOTION, "Furious", "angry", "synonym"),
    ("emotion", EMOTION, "The speaker sounds joyful and excited.", "happy", "mention"),
    ("emotion", EMOTION, "The speaker is not angry, but sad.", "sad", "mention"),
    ("emotion", EMOTION, "The speaker isn't happy; they sound sad.", "sad", "mention"),
    ("accent", ACCENT, "Answer: (B) british", "en-gb", "synonym"),
    ("accent", ACCENT, "(A) en-us", "en-us", "normalised"),
    ("accent", ACCENT, "The accent is en-gb-scotland.", "en-gb-scotland", "mention"),
    ("accent", ACCENT, "EN-GB", "en-gb", "normalised"),
    ("accent", ACCENT, "It sounds Scottish to me.", "en-gb-scotland", "mention"),
    ("distance", DISTANCE, "zero point four meters", "0.4m", "normalised"),
    ("distance", DISTANCE, "0.4 m", "0.4m", "normalised"),
    ("distance", DISTANCE, "4 metres", "4.0m", "normalised"),
    ("distance", DISTANCE, "About 2 meters away.", "2.0m", "mention"),
    ("distance", DISTANCE, "The speaker is far from the microphone.", "4.0m", "mention"),
    ("gender", GENDER, "female", "female", "exact"),
    ("gender", GENDER, "This is a male voice.", "male", "mention"),
    ("gender", GENDER, "The speaker is a woman.", "female", "mention"),
    ("speaker_count", COUNT, "Three people are talking.", "3", "mention"),
    ("speaker_count", COUNT, "two", "2", "normalised"),
    ("speaker_count", COUNT, "There are 4 speakers.", "4", "mention"),
    ("multi_speaker", MULTI, "Yes, two people overlap.", "true", "mention"),
    ("multi_speaker", MULTI, "True", "true", "normalised"),
    ("spoken_word", WORDS, " Yes.", "yes", "normalised"),
    ("spoken_word", WORDS, "Go!", "go", "normalised"),
    ("spoken_word", WORDS, "The word is 'left'.", "left", "mention"),
    # negations: a negated label does not count, the other one does
    ("emotion", EMOTION, "Neither happy nor sad; the voice is neutral.", "neutral", "mention"),
    ("emotion", EMOTION, "not angry, happy", "happy", "mention"),
    ("emotion", EMOTION, "The speaker is not really sad, more angry.", "angry", "mention"),
    ("gender", GENDER, "Not a man; it is a woman speaking.", "female", "mention"),
    # synonyms, casing and punctuation
    ("emotion", EMOTION, "JOYFUL!!!", "happy", "synonym"),
    ("emotion", EMOTION, "**Angry**", "angry", "normalised"),
    ("emotion", EMOTION, '"sad"', "sad", "normalised"),
    ("emotion", EMOTION, "The speaker sounds joyful and excited.", "happy", "mention"),  # two synonyms, one label
    ("accent", ACCENT, "a Jamaican accent", "en-029", "mention"),
    ("spoof", ("authentic", "spoofed"), "This is a synthetic voice.", "spoofed", "mention"),
    ("speaker_count", COUNT, "2 speakers, 2 voices.", "2", "mention"),  # one label named twice
    # answers in the label's language
    ("language", LANGUAGE, "Deutsch", "german", "synonym"),
    ("language", LANGUAGE, "Français.", "french", "synonym"),
    ("language", LANGUAGE, "La lengua es español.", "spanish", "mention"),
    ("language", LANGUAGE, "It is spoken in German.", "german", "mention"),
    ("emotion-fr", FRENCH, "Colère", "colère", "normalised"),
    ("emotion-fr", FRENCH, "La voix exprime de la tristesse.", "tristesse", "mention"),
]

FAILURES = [
    ("emotion", EMOTION, "", "empty"),
    ("emotion", EMOTION, "   ", "empty"),
    ("emotion", EMOTION, None, "empty"),
    ("emotion", EMOTION, "I cannot tell from this recording.", "unparsed"),
    ("emotion", EMOTION, "(B)", "unparsed"),
    ("distance", DISTANCE, "four", "unparsed"),  # a number that is no label
    ("gender", GENDER, "The speaker is not male.", "unparsed"),
    ("emotion", EMOTION, "not angry", "unparsed"),
    # echoes of the prompt and answers that name several labels: failures, never the first label
    ("emotion", EMOTION, "neutral, happy, sad or angry", "ambiguous"),
    ("emotion", EMOTION, "Choose one of: neutral, happy, sad, angry.", "ambiguous"),
    ("gender", GENDER, "Is the speaker male or female?", "ambiguous"),
    ("gender", GENDER, "male or female", "ambiguous"),
    ("emotion", EMOTION, "Happy or sad, hard to say.", "ambiguous"),
    ("accent", ACCENT, "Either British or American.", "ambiguous"),
    ("language", LANGUAGE, "English and German are both spoken.", "ambiguous"),
    ("distance", DISTANCE, "between 0.4 m and 2 m", "ambiguous"),
    ("emotion-fr", FRENCH, "joie ou tristesse", "ambiguous"),
    ("spoken_word", WORDS, "", "empty"),
    ("language", LANGUAGE, "Sprache: unbekannt", "unparsed"),
]


def test_the_answer_table_is_large_enough():
    assert len(CASES) + len(FAILURES) >= 40


@pytest.mark.parametrize(("task", "labels", "answer", "expected", "rule"), CASES)
def test_real_looking_answers_map_to_labels(task, labels, answer, expected, rule):
    result = parse_answer(answer, labels, synonyms_for(task, labels))
    assert (result.label, result.rule) == (expected, rule)


@pytest.mark.parametrize(("task", "labels", "answer", "rule"), FAILURES)
def test_unparseable_answers_are_failures_not_crashes(task, labels, answer, rule):
    result = parse_answer(answer, labels, synonyms_for(task, labels))
    assert result.label is None and result.rule == rule


def test_normalisation_numbers_units_and_case():
    assert normalise("0.4m") == normalise("0.4 m") == normalise("Zero point four metres") == ("0.4", "m")
    assert normalise("2.0 M") == normalise("two meters") == ("2", "m")
    assert normalise("one hundred and five") == ("105",)
    assert normalise("twenty one") == ("21",) and normalise("two three") == ("2", "3")
    assert normalise("Français!") == ("francais",)
    assert normalise("It's 4 s long") == ("it", "s", "4", "s", "long")  # "s" is a unit only after a number


def test_whole_tokens_only_and_longest_mention_wins():
    parser = AnswerParser(GENDER)
    assert parser("females only").label is None  # "females" is not "female" (no stemming)
    assert parser("a female speaker").label == "female"  # never "male" inside "female"
    accents = AnswerParser(ACCENT)
    assert accents("accent: en-gb-x-rp for sure").label == "en-gb-x-rp"


def test_ambiguous_synonyms_are_dropped_and_labels_win():
    parser = AnswerParser(("cat", "dog"), {"cat": ["pet", "kitty"], "dog": ["pet", "puppy"]})
    assert parser("pet").label is None  # claimed by both labels
    assert parser("a kitty").label == "cat"
    parser = AnswerParser(("yes", "no"), {"no": ["yes"]})  # a synonym that is another label's name is ignored
    assert parser("yes").label == "yes"


def test_user_synonyms_extend_the_table():
    table = synonyms_for("emotion", EMOTION, {"sad": ["blue"]})
    assert "blue" in table["sad"] and "sorrowful" in table["sad"]
    assert parse_answer("feeling blue", EMOTION, table).label == "sad"
    # labels of an unknown task borrow the generic table (Dynamic-SUPERB spellings included)
    meld = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
    assert parse_answer("The speaker sounds happy.", meld, synonyms_for("ds-emotion", meld)).label == "joy"
    stress = ("zero", "one", "two", "three", "four", "five")
    assert parse_answer("Word 2 is stressed.", stress, synonyms_for("ds-stress", stress)).label == "two"
    assert (
        parse_answer("She sounds furious.", ("angry", "calm"), synonyms_for("ds-emotion", ("angry", "calm"))).label
        == "angry"
    )
