"""Rare classes by rule: which classes a plan cannot test, dropped or merged, with their reasons."""

import numpy as np
import pytest

from speechprobe.errors import ConfigError
from speechprobe.probes import make_cv
from speechprobe.probes.rare import resolve_rare_classes


def _accentdb_like():
    """Four accents of 3 speakers x 4 clips each, and two (welsh, odiya) of one speaker with 12 clips."""
    labels, groups = [], []
    for accent in ("american", "australian", "bangla", "indian"):
        for s in range(3):
            labels += [accent] * 4
            groups += [f"{accent}{s}"] * 4
    for accent in ("welsh", "odiya"):
        labels += [accent] * 12
        groups += [f"{accent}0"] * 12
    return labels, groups


def test_one_speaker_classes_are_dropped_with_their_reason():
    labels, groups = _accentdb_like()
    rare = resolve_rare_classes(labels, groups, n_folds=3)
    assert sorted(rare.classes) == ["odiya", "welsh"]
    assert rare.classes["welsh"] == {
        "clips": 12,
        "groups": 1,
        "action": "dropped",
        "reason": "1 group(s) (speakers), fewer than the 3 that 3 grouped folds need: it cannot be tested on "
        "speakers it was not trained on",
    }
    assert int((~rare.keep).sum()) == 24 and rare.kept_classes == ["american", "australian", "bangla", "indian"]
    assert rare.as_dict()["n_dropped"] == 24 and rare.as_dict()["need"] == {"clips": 3, "groups": 3}
    assert rare.reason("odiya").startswith("class 'odiya' dropped: 1 group(s)")
    assert rare.message("ds-accent") == (
        "task ds-accent: rare classes (drop): 'odiya' (12 clips, 1 group(s)) dropped; 'welsh' (12 clips, 1 group(s)) "
        "dropped; Macro-F1 is over the 4 classes left (american, australian, bangla, indian)"
    )
    # what is left makes a valid grouped plan with every class in every test fold
    y, g = np.array(labels)[rare.keep], np.array(groups)[rare.keep]
    plan = make_cv(y, g, n_folds=3)
    assert all(not f["missing_test"] for f in plan.describe(y, g)["folds"])
    with pytest.raises(ConfigError, match="fewer than 3 groups"):  # without the rule: the old refusal
        make_cv(labels, groups, n_folds=3)


def test_ungrouped_and_logo_needs():
    labels, groups = _accentdb_like()
    assert resolve_rare_classes(labels, None, n_folds=5).classes == {}  # 12 clips each: enough for 5 folds
    logo = resolve_rare_classes(labels, groups, n_folds=5, scheme="logo")
    assert sorted(logo.classes) == ["odiya", "welsh"] and logo.need_groups == 2 and logo.need_clips == 2
    assert "fewer than the 2 that leave-one-group-out need" in logo.classes["welsh"]["reason"]
    small = resolve_rare_classes(["a"] * 6 + ["b"] * 6 + ["c"] * 2, None, n_folds=5)
    reason = "2 clip(s), fewer than the 5 that 5 folds need"
    assert small.classes == {"c": {"clips": 2, "groups": None, "action": "dropped", "reason": reason}}


def test_merge_into_a_named_rest_class():
    labels, groups = _accentdb_like()
    # welsh and odiya together have 2 speakers: enough for leave-one-group-out
    rare = resolve_rare_classes(labels, groups, n_folds=5, scheme="logo", rule="merge:british-isles-and-odiya")
    assert rare.rule == "merge:british-isles-and-odiya"
    assert {c: i["action"] for c, i in rare.classes.items()} == {"odiya": "merged", "welsh": "merged"}
    assert rare.keep.all() and rare.labels[-24:] == ["british-isles-and-odiya"] * 24
    assert rare.kept_classes == ["american", "australian", "bangla", "british-isles-and-odiya", "indian"]
    # with 3 grouped folds the 2-speaker rest class is still short: dropped under its own name, counted
    short = resolve_rare_classes(labels, groups, n_folds=3, rule="merge")
    assert short.classes["other"]["action"] == "dropped" and short.classes["other"]["groups"] == 2
    assert short.classes["other"]["reason"].startswith("rest class: 2 group(s)")
    assert short.reason("welsh").startswith("class 'welsh' merged into 'other', which was dropped: rest class")
    assert int((~short.keep).sum()) == 24


@pytest.mark.parametrize("rule", ["keep", "drop:x", "merge:", "merge: "])
def test_bad_rule_is_a_one_line_error(rule):
    with pytest.raises(ConfigError, match="--rare-classes .*use drop, merge or merge:NAME"):
        resolve_rare_classes(["a", "b"], None, 2, rule=rule)
