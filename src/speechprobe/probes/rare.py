"""Rare classes: classes with fewer clips, or fewer groups, than the cross-validation plan needs.

A k-fold plan needs ``n_folds`` clips per class and, when folds are grouped, ``n_folds`` groups per
class (the class can then be in every test fold while none of its speakers is on both sides);
leave-one-group-out needs 2 of each (one group to train on while another is tested). A class short
of that cannot be tested on clips (speakers) it was not trained on, so :func:`resolve_rare_classes`
applies the rule ``--rare-classes``:

- ``drop`` (default): the class is left out with a counted reason, and so leaves the label set that
  Macro-F1 averages over (it never scores a silent 0);
- ``merge[:NAME]``: the short classes become one rest class ``NAME`` (default ``other``; an existing
  class name adds them to that class), which is itself dropped when it is still short.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..config import parse_rare_rule
from .cv import groups_per_class, min_groups_needed, normalise_groups


def plan_words(n_folds: int, scheme: str, grouped: bool) -> str:
    """The plan in words, for reasons: ``5 grouped folds``, ``5 folds``, ``leave-one-group-out``."""
    if scheme == "logo":
        return "leave-one-group-out"
    return f"{n_folds} grouped folds" if grouped else f"{n_folds} folds"


@dataclass
class RareClasses:
    """What the rule did to one task's items: their labels after merging, which are kept, and per
    affected class its clips, groups, action (``dropped`` / ``merged``), rest class and reason."""

    rule: str
    need_clips: int
    need_groups: int | None  # None: folds not grouped
    labels: list[str]
    keep: np.ndarray
    classes: dict[str, dict] = field(default_factory=dict)

    @property
    def kept_classes(self) -> list[str]:
        return sorted({lab for lab, k in zip(self.labels, self.keep) if k})

    def reason(self, label: str) -> str:
        """Why an item of (original) class ``label`` was left out."""
        info = self.classes[label]
        if info["action"] == "merged":
            rest = self.classes[info["into"]]
            return f"class {label!r} merged into {info['into']!r}, which was dropped: {rest['reason']}"
        return f"class {label!r} dropped: {info['reason']}"

    def as_dict(self) -> dict:
        """The manifest.json entry: rule, what the plan needs, each affected class, clips dropped."""
        return {
            "rule": self.rule,
            "need": {"clips": self.need_clips, "groups": self.need_groups},
            "classes": self.classes,
            "n_dropped": int((~self.keep).sum()),
        }

    def message(self, task: str) -> str:
        """One line for the console and the report's warnings ('' when no class was affected)."""
        if not self.classes:
            return ""
        parts = []
        for c, info in sorted(self.classes.items()):
            groups = "" if info["groups"] is None else f", {info['groups']} group(s)"
            what = f"merged into {info['into']!r}" if info["action"] == "merged" else "dropped"
            parts.append(f"{c!r} ({info['clips']} clips{groups}) {what}")
        kept = self.kept_classes
        return (
            f"task {task}: rare classes ({self.rule}): {'; '.join(parts)}; Macro-F1 is over the {len(kept)} "
            f"classes left ({', '.join(kept)})"
        )


def _counts(y: np.ndarray, g: np.ndarray | None) -> dict[str, tuple[int, int | None]]:
    clips = dict(zip(*np.unique(y, return_counts=True)))
    groups = groups_per_class(y, g) if g is not None else {}
    return {str(c): (int(n), groups.get(str(c))) for c, n in clips.items()}


def _why(clips: int, groups: int | None, need_clips: int, need_groups: int | None, plan: str) -> str | None:
    """The reason a class is short, or None when it is not."""
    if need_groups is not None and groups is not None and groups < need_groups:
        return (
            f"{groups} group(s) (speakers), fewer than the {need_groups} that {plan} need: it cannot be "
            "tested on speakers it was not trained on"
        )
    if clips < need_clips:
        return f"{clips} clip(s), fewer than the {need_clips} that {plan} need"
    return None


def resolve_rare_classes(
    labels: Sequence[str] | np.ndarray,
    groups: Sequence[str | None] | np.ndarray | None = None,
    n_folds: int = 5,
    scheme: str = "kfold",
    rule: str = "drop",
) -> RareClasses:
    """Apply ``rule`` (``drop``, ``merge`` or ``merge:NAME``) to the classes too small for the plan.

    ``groups``: each item's group when folds are grouped (None: ungrouped; items without a group
    count as groups of their own, as :func:`~speechprobe.probes.cv.make_cv` treats them).
    """
    kind, rest = parse_rare_rule(rule)
    y = np.asarray(labels).astype(str)
    g, _ = normalise_groups(groups, len(y))
    need_clips = 2 if scheme == "logo" else n_folds
    need_groups = min_groups_needed(scheme, n_folds) if g is not None else None
    plan = plan_words(n_folds, scheme, g is not None)
    name = rule if kind == "drop" else f"merge:{rest}"
    out = RareClasses(name, need_clips, need_groups, y.tolist(), np.ones(len(y), bool))
    for c, (n, k) in _counts(y, g).items():
        why = _why(n, k, need_clips, need_groups, plan)
        if why:
            out.classes[c] = {"clips": n, "groups": k, "action": "dropped", "reason": why}
    if not out.classes:
        return out
    if kind == "merge":
        y = np.where(np.isin(y, list(out.classes)), rest, y)
        for info in out.classes.values():
            info.update(action="merged", into=rest, reason=f"merged into {rest!r}: {info['reason']}")
        n, k = _counts(y, g)[rest]
        why = _why(n, k, need_clips, need_groups, plan)
        if why:  # the rest class is short too: dropped (recorded under its own name)
            out.classes[rest] = {"clips": n, "groups": k, "action": "dropped", "reason": f"rest class: {why}"}
        out.labels = y.tolist()
    dropped = [c for c, info in out.classes.items() if info["action"] == "dropped"]
    out.keep = ~np.isin(y, dropped)
    return out
