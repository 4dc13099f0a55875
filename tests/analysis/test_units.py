"""The unit of inference: clips or groups, exchangeable groups with exact enumeration, the minimum-units rule,
and the fold plan in words."""

import numpy as np
import pytest

from speechprobe.analysis.bootstrap import resampling_facts
from speechprobe.analysis.stats import label_permuter, min_attainable_p, selection_test
from speechprobe.analysis.units import (
    MIN_UNITS_PER_CLASS,
    PURITY,
    fold_plan_text,
    inference_unit,
    relabelings,
    too_few_text,
    unit_text,
)
from speechprobe.probes import make_cv


def _speakers(n_speakers: int, per_speaker: int = 6):
    groups = np.repeat([f"s{i}" for i in range(n_speakers)], per_speaker)
    labels = np.repeat(np.array(["a", "b"])[np.arange(n_speakers) % 2], per_speaker)
    return labels, groups


def test_groups_are_the_unit_when_the_label_is_constant_within_them():
    y, g = _speakers(10)
    unit = inference_unit(y, g, "speaker")
    assert unit.kind == "group" and unit.noun == "speaker" and unit.per_class == {"a": 5, "b": 5} and unit.enough
    assert unit.n_units == 10 and unit.too_few("a test") == ""
    # one clip in 20 of another label (95 %) keeps the group as the unit, with its majority label
    y20, g20 = np.repeat(["a", "b"], 20), np.repeat(["s0", "s1"], 20)
    y20[0] = "b"
    assert 19 / 20 >= PURITY and inference_unit(y20, g20).kind == "group"
    assert list(inference_unit(y20, g20).unit_label) == ["a", "b"]
    y20[1] = "b"  # 18 of 20 (90 %): the label varies within the group, so clips are the unit
    clip = inference_unit(y20, g20)
    assert clip.kind == "clip" and clip.n_units == 40 and clip.per_class == {"a": 18, "b": 22}
    assert inference_unit(y, None).kind == "clip" and inference_unit(y, np.full(len(y), "")).kind == "clip"


def test_too_few_units_say_why_in_one_line():
    y, g = _speakers(4)
    unit = inference_unit(y, g, "language")
    assert not unit.enough and MIN_UNITS_PER_CLASS == 5
    assert unit.too_few("a test") == "2 languages in the smallest class: too few for a test (needs 5 per class)"
    assert too_few_text(unit.describe(), "a bootstrap") == (
        "2 languages in the smallest class: too few for a bootstrap (needs 5 per class)"
    )
    assert too_few_text(inference_unit(*_speakers(10)).describe(), "x") == "" and too_few_text({}, "x") == ""
    assert unit_text(unit.describe()) == (
        "unit of inference: 4 languages (a 2, b 2); the label is constant within each language"
    )
    n, over, note = resampling_facts(y, g, "language")
    assert n == 4 and over == "bootstrap over 4 languages (drawn within each class; at least 2 per class)"
    assert note == "2 languages in the smallest class: too few for a bootstrap (needs 5 per class)"


def test_relabelings_are_every_distinct_arrangement_the_observed_first():
    table = relabelings(np.array([0, 0, 1, 1, 1]))
    assert table.shape == (10, 5) and len({tuple(r) for r in table}) == 10  # C(5, 2)
    assert list(table[0]) == [0, 0, 1, 1, 1] and (table.sum(axis=1) == 3).all()
    assert relabelings(np.array([2, 0, 1])).shape == (6, 3)


def test_group_shuffles_keep_speakers_whole_and_fold_class_counts():
    y, g = _speakers(10)
    folds = make_cv(y, g, 5, 0).folds
    scheme, permute = label_permuter(y, g, folds)
    rng = np.random.default_rng(0)
    for _ in range(20):
        new = permute(rng)
        assert scheme == "group-level"
        assert all(len(set(new[g == s])) == 1 for s in np.unique(g))  # a speaker keeps one label
        for _, test in folds:  # stratified folds keep their class counts
            assert sorted(new[test]) == sorted(y[test])
    # 5 folds of one speaker per class: 2^5 labellings, all enumerated; leave-one-out pools every speaker
    assert min_attainable_p(y, g, folds, 1000) == (1 / 32, True)
    logo = make_cv(y, g, 5, 0, 1, "logo").folds
    assert min_attainable_p(y, g, logo, 1000) == (1 / 252, True)  # C(10, 5)
    assert min_attainable_p(y, g, logo, 100) == (pytest.approx(1 / 101), False)  # 100 shuffles of 252
    p, exact = min_attainable_p(y, None, folds, 1000)
    assert p == pytest.approx(1 / 1001) and not exact  # clip shuffles: far more labellings than shuffles


def test_exact_group_test_and_no_p_with_too_few_units():
    rng = np.random.default_rng(1)
    y, g = _speakers(10)
    X = rng.normal(size=(len(y), 3, 4)).astype(np.float32)
    X[:, 1, 0] += (y == "a") * 4.0  # layer 1 carries the label
    logo = make_cv(y, g, 5, 0, 1, "logo").folds
    test = selection_test(X, y, g, ("knn",), 1000, folds=logo, group_noun="speaker")
    assert test.exact and test.n_permutations == 252 and test.unit == "speaker" and test.n_units == 10
    assert test.min_p == pytest.approx(1 / 252) and test.note == ""
    # the real labelling and its mirror image (a <-> b) score the same: the exact p is 2/252
    assert test.best[1] == 1 and test.p_value == pytest.approx(2 / 252)
    y4, g4 = _speakers(4)
    few = selection_test(X[: len(y4)], y4, g4, ("knn",), 1000, folds=make_cv(y4, g4, 2, 0, 1, "logo").folds)
    assert few.exact and few.n_permutations == 6 and np.isnan(few.p_value) and np.isnan(few.layer_p).all()
    assert few.note.startswith("2 groups in the smallest class: too few for a permutation test")
    assert np.isfinite(few.chance).all()  # the empirical chance still comes from the 6 labellings


@pytest.mark.slow
def test_speaker_level_labels_are_calibrated():
    """A small version of benchmarks/calibration.py's speaker-level simulation (signal-free, 10 speakers)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from calibration import speaker_level

    rejected = 0
    for i in range(30):
        feats, y, groups = speaker_level(i)
        folds = make_cv(y, groups, 5, i, 1, "logo").folds
        rejected += selection_test(feats, y, groups, ("knn",), 1000, folds=folds, seed=i).p_value <= 0.05
    assert rejected <= 3  # 30 null datasets at alpha = 0.05: 1.5 expected


def test_the_fold_plan_in_words():
    cv = {"scheme": "leave-one-group-out", "n_splits": 2, "repeats": 1, "n_groups": 2}
    assert fold_plan_text(cv, "language") == "leave-one-language-out cross-validation (2 folds, one per language)"
    cv = {"scheme": "stratified-group-kfold", "n_splits": 5, "repeats": 5, "n_groups": 24, "n_folds_total": 25}
    assert fold_plan_text(cv, "speaker") == (
        "5-fold cross-validation grouped by speaker (24 speakers), 5 repeats (25 folds)"
    )
    cv["n_groups"] = 4
    assert fold_plan_text(cv) == "5-fold cross-validation grouped (4 groups), 5 repeats (25 folds)"
    cv = {"scheme": "stratified-kfold", "n_splits": 5, "repeats": 1}
    assert fold_plan_text(cv) == "stratified 5-fold cross-validation over clips (not grouped)"
    assert fold_plan_text({}) == ""


def test_a_clip_unit_inside_groups_that_are_not_speakers_is_flagged():
    from speechprobe.analysis.uncertainty import uncertainty_warnings

    cv = {"grouped": True, "group_name": "language", "unit": {"kind": "clip"}}
    (line,) = uncertainty_warnings({"cv": {"t": cv}})
    assert line.startswith("Task t: the label varies within each language, so clips are the unit")
    assert uncertainty_warnings({"cv": {"t": {**cv, "group_name": "speaker"}}}) == []
    assert uncertainty_warnings({"cv": {"t": {**cv, "unit": {"kind": "group"}}}}) == []
