import numpy as np
import pytest

from speechprobe.errors import ConfigError
from speechprobe.probes import make_cv, make_folds
from speechprobe.probes.cv import group_shortfall, normalise_groups

LABELS = np.repeat(["a", "b", "c"], [20, 12, 8])
GROUPS = np.array([f"g{i % 8}" for i in range(len(LABELS))])  # every group spans classes


def _assert_partition(folds, n):
    tests = np.concatenate([test for _, test in folds])
    np.testing.assert_array_equal(np.sort(tests), np.arange(n))
    for train, test in folds:
        assert not np.intersect1d(train, test).size
        assert len(train) + len(test) == n


@pytest.mark.parametrize("groups", [None, GROUPS])
def test_folds_partition_items_and_keep_every_class_in_every_test_fold(groups):
    folds = make_folds(LABELS, groups, n_folds=4, seed=0)
    assert len(folds) == 4
    _assert_partition(folds, len(LABELS))
    for _, test in folds:
        assert set(LABELS[test]) == {"a", "b", "c"}


def test_grouped_folds_never_share_a_group():
    for seed in range(5):
        for train, test in make_folds(LABELS, GROUPS, n_folds=4, seed=seed):
            assert not set(GROUPS[train]) & set(GROUPS[test])


def test_folds_are_seeded():
    def as_lists(folds):
        return [test.tolist() for _, test in folds]

    for groups in (None, GROUPS):
        assert as_lists(make_folds(LABELS, groups, 4, seed=1)) == as_lists(make_folds(LABELS, groups, 4, seed=1))
    assert as_lists(make_folds(LABELS, None, 4, seed=1)) != as_lists(make_folds(LABELS, None, 4, seed=2))


@pytest.mark.parametrize(
    ("labels", "groups", "n_folds", "message"),
    [
        (LABELS, None, 1, r"n_folds is 1; use 2 or more folds"),
        (LABELS, None, 10, r"class 'c' has 8 items, fewer than n_folds=10; lower n_folds or add items"),
        (LABELS, GROUPS, 10, r"class 'c' has 8 items, fewer than n_folds=10"),
        (np.repeat(["a"], 10), None, 2, r"at least 2 classes, found 1"),
        (
            LABELS,
            np.repeat(["x", "y", "z"], [14, 13, 13]),
            4,
            r"3 class\(es\) have fewer than 4 groups \('c': 1, 'a': 2, 'b': 2\)",
        ),
        (LABELS, GROUPS[:5], 4, r"got 5 groups for 40 labels"),
    ],
)
def test_bad_settings_raise_one_line_config_errors(labels, groups, n_folds, message):
    with pytest.raises(ConfigError, match=message) as info:
        make_folds(labels, groups, n_folds=n_folds)
    assert "\n" not in str(info.value)


# A toy with known coverage: 3 classes, every speaker reads one class; 'c' has only 2 speakers.
TOY_LABELS = np.repeat(["a", "b", "c"], [12, 12, 6])
TOY_GROUPS = np.array([f"a{i % 4}" for i in range(12)] + [f"b{i % 4}" for i in range(12)] + ["c0", "c1"] * 3)


def test_leave_one_group_out_coverage_is_known():
    plan = make_cv(TOY_LABELS, TOY_GROUPS, scheme="logo")
    assert plan.scheme == "leave-one-group-out" and plan.n_splits == len(plan.folds) == 10 and plan.repeats == 1
    _assert_partition(plan.folds, len(TOY_LABELS))
    for fold in plan.coverage(TOY_LABELS):
        # one speaker per test fold: its own class only; every class keeps a speaker in training
        assert len(fold["missing_test"]) == 2 and fold["missing_train"] == []
    info = plan.describe(TOY_LABELS, TOY_GROUPS)
    assert info["groups_per_class"] == {"a": 4, "b": 4, "c": 2} and info["n_groups"] == 10
    assert info["folds_missing_test_class"] == 10 and info["folds_missing_train_class"] == 0
    # mean test size 3, mean training size 27
    assert info["test_train_ratio"] == pytest.approx(3 / 27)


def test_grouped_kfold_coverage_and_group_shortfall():
    assert group_shortfall(TOY_LABELS, TOY_GROUPS, 3) == {"c": 2}
    assert group_shortfall(TOY_LABELS, TOY_GROUPS, 2) == {}
    assert group_shortfall(TOY_LABELS, TOY_GROUPS, 3, "logo") == {}
    assert group_shortfall(TOY_LABELS, None, 3) == {}
    with pytest.raises(ConfigError, match=r"1 class\(es\) have fewer than 3 groups \('c': 2\)") as info:
        make_cv(TOY_LABELS, TOY_GROUPS, 3)
    assert "\n" not in str(info.value)
    plan = make_cv(TOY_LABELS, TOY_GROUPS, 2, seed=0)
    cover = plan.coverage(TOY_LABELS)
    assert [f["missing_test"] for f in cover] == [[], []] and [f["missing_train"] for f in cover] == [[], []]
    assert plan.describe(TOY_LABELS, TOY_GROUPS)["folds_missing_test_class"] == 0


def test_repeats_reshuffle_and_keep_repeat_zero():
    plan = make_cv(LABELS, GROUPS, 4, seed=3, repeats=3)
    assert len(plan.folds) == 12 and plan.n_splits == 4 and [plan.repeat_of(j) for j in (0, 3, 4, 11)] == [0, 0, 1, 2]
    for r in range(3):
        _assert_partition(plan.folds[4 * r : 4 * r + 4], len(LABELS))
    first = [test.tolist() for _, test in plan.folds[:4]]
    assert first == [test.tolist() for _, test in make_folds(LABELS, GROUPS, 4, seed=3)]  # repeat 0 = old folds
    assert first != [test.tolist() for _, test in plan.folds[4:8]]
    with pytest.raises(ConfigError, match="one partition only"):
        make_cv(TOY_LABELS, TOY_GROUPS, scheme="logo", repeats=2)
    with pytest.raises(ConfigError, match="needs groups"):
        make_cv(TOY_LABELS, None, scheme="logo")


def test_items_without_a_group_each_get_their_own():
    groups = np.array(["g0", "g1", "g2", "g3"] * 8 + [""] * 8, dtype=object)
    labels = np.array(["a", "b"] * 20)
    groups[-3] = None
    normalised, singletons = normalise_groups(groups, len(labels))
    assert singletons == 8 and len(set(normalised[-8:])) == 8 and not set(normalised[-8:]) & {"g0", "g1"}
    plan = make_cv(labels, groups, 4, seed=0)
    folds_of_ungrouped = {k for k, (_, test) in enumerate(plan.folds) for i in test if i >= 32}
    assert len(folds_of_ungrouped) > 1  # not one shared "unknown" group on one side of every fold
    assert normalise_groups(["", None], 2) == (None, 0)
