import numpy as np
import pytest

from speechprobe.errors import ConfigError
from speechprobe.probes import make_folds

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
