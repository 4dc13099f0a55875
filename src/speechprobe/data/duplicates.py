"""Repeated audio in a task: found by content hash, kept on one side of every fold, or dropped.

A clip listed twice, or the same audio under two labels or two speakers, would otherwise land in
both a training and a test fold: the probe then recognises a clip it has seen, and scores rise
without any knowledge behind them (listing every row twice raised a KNN Macro-F1 from 0.87 to 0.97).

:func:`resolve_duplicates` keeps every copy and merges the groups of identical contents (the
connected groups take the smallest name among them), so grouped folds keep copies together; a task
without groups gets one group per distinct content. With ``drop`` the first clip of each content is
kept and later copies are dropped; a content carried under different labels is dropped whole (no
label can be trusted for it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass


@dataclass
class DuplicateReport:
    """What repeated content a task holds (counts go into manifest.json)."""

    copies: int = 0  # clips whose content appears earlier in the task
    contents: int = 0  # distinct contents that appear more than once
    conflicting_labels: int = 0  # of those, contents carried under more than one label
    groups_merged: int = 0  # groups joined so that copies share a group
    dropped: int = 0  # clips dropped (drop=True)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def message(self, task: str, drop: bool) -> str:
        what = (
            f"task {task}: {self.copies} clip(s) repeat the audio of another ({self.contents} distinct "
            f"content(s), {self.conflicting_labels} under different labels)"
        )
        if drop:
            return f"{what}; {self.dropped} dropped (--drop-duplicates)"
        return (
            f"{what}; copies are kept in one group so they never straddle train and test (--drop-duplicates drops them)"
        )


def resolve_duplicates(
    hashes: Sequence[str], labels: Sequence[str], groups: Sequence[str | None], drop: bool = False
) -> tuple[list[bool], list[str | None], DuplicateReport]:
    """``(keep, groups, report)``: which clips to keep and each clip's group (see the module docstring)."""
    where: dict[str, list[int]] = defaultdict(list)
    for i, h in enumerate(hashes):
        where[h].append(i)
    repeated = {h: idx for h, idx in where.items() if len(idx) > 1}
    report = DuplicateReport(
        copies=sum(len(idx) - 1 for idx in repeated.values()),
        contents=len(repeated),
        conflicting_labels=sum(len({labels[i] for i in idx}) > 1 for idx in repeated.values()),
    )
    keep = [True] * len(hashes)
    new_groups = list(groups)
    if not repeated:
        return keep, new_groups, report
    if drop:
        for idx in repeated.values():
            conflicting = len({labels[i] for i in idx}) > 1
            for i in idx if conflicting else idx[1:]:
                keep[i] = False
        report.dropped = keep.count(False)
        return keep, new_groups, report
    if not any(groups):  # ungrouped: one group per distinct content
        return keep, [f"content:{h[:16]}" for h in hashes], report
    merged = _merge_groups([[groups[i] or "" for i in idx] for idx in repeated.values()])
    report.groups_merged = sum(1 for g, root in merged.items() if g != root)
    return keep, [merged.get(g or "", g or "") or None for g in groups], report


def _merge_groups(components: list[list[str]]) -> dict[str, str]:
    """Union-find over group names: each name -> the smallest name it is connected to."""
    parent: dict[str, str] = {}

    def find(g: str) -> str:
        parent.setdefault(g, g)
        while parent[g] != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    for names in components:
        roots = sorted({find(g) for g in names})
        for r in roots[1:]:
            parent[r] = roots[0]
    return {g: find(g) for g in list(parent)}
