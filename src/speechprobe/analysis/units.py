"""The unit of inference of a task: clips, or groups (speakers, languages, …) when the label is a
property of the group. Every test, bootstrap and interval takes its unit and its count from here.

Rule (``docs/statistics.md``, *Units*):

- **groups** when the task has groups and in every group the most common label holds at least
  :data:`PURITY` (95 %) of its clips: the label is then (nearly) constant within groups, so the groups,
  not the clips, are the independent draws. A group's label is its most common label;
- **clips** otherwise (no groups, or labels that vary within groups, e.g. every speaker reads every
  emotion; the permutation then shuffles clips within each group).

**Minimum units.** A class with fewer than :data:`MIN_UNITS_PER_CLASS` (5) units gets no permutation
test, no bootstrap interval, no fingerprint interval and no paired gap: with 2 groups per class and
2 classes there are only C(4, 2) = 6 distinct group labellings, so no p-value can fall below 1/6 and a
bootstrap over 2 groups per class can only reproduce them. Only the corrected resampled t over the folds
is then shown, and the report says why in one line (:meth:`InferenceUnit.too_few`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from math import lgamma
from pathlib import Path

import numpy as np
import pandas as pd

PURITY = 0.95  # share of a group's clips its most common label must hold for the group to be the unit
MIN_UNITS_PER_CLASS = 5  # fewer units in some class: no test, bootstrap, fingerprint interval or paired gap


def plural(noun: str, n: int) -> str:
    """``"1 speaker"``, ``"4 speakers"``; irregular nouns are not expected (speaker, language, dialogue, …)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


@dataclass(frozen=True)
class InferenceUnit:
    """``kind`` ``"clip"`` or ``"group"``; ``noun`` what one unit is (clip, speaker, language, …);
    ``codes`` the unit of every clip; ``unit_label`` the label of every unit (its most common label);
    ``per_class`` the number of units of each class."""

    kind: str
    noun: str
    codes: np.ndarray
    unit_label: np.ndarray
    per_class: dict[str, int]

    @property
    def n_units(self) -> int:
        return len(self.unit_label)

    @property
    def min_per_class(self) -> int:
        return min(self.per_class.values()) if self.per_class else 0

    @property
    def enough(self) -> bool:
        """Every class has at least :data:`MIN_UNITS_PER_CLASS` units."""
        return self.min_per_class >= MIN_UNITS_PER_CLASS

    def too_few(self, what: str) -> str:
        """One line saying why ``what`` (e.g. "a test") is not computed; "" when there are enough units."""
        if self.enough:
            return ""
        return (
            f"{plural(self.noun, self.min_per_class)} in the smallest class: too few for {what} "
            f"(needs {MIN_UNITS_PER_CLASS} per class)"
        )

    def describe(self) -> dict:
        """The unit for manifest.json (``cv[task].unit``)."""
        return {
            "kind": self.kind,
            "noun": self.noun,
            "n_units": self.n_units,
            "per_class": dict(self.per_class),
            "min_per_class": self.min_per_class,
            "min_units_per_class": MIN_UNITS_PER_CLASS,
            "purity": PURITY,
            "enough": self.enough,
        }


def inference_unit(
    labels: Sequence[str] | np.ndarray, groups: Sequence[str] | np.ndarray | None, group_noun: str = "group"
) -> InferenceUnit:
    """The unit of ``labels`` given ``groups`` (None or all empty: clips), by the module's rule."""
    y = np.asarray(labels).astype(str)
    g = None if groups is None else np.asarray(groups).astype(str)
    if g is not None and (g == "").all():
        g = None
    if g is not None:
        names, codes = np.unique(g, return_inverse=True)
        table = pd.crosstab(codes, y)
        top = table.max(axis=1) / table.sum(axis=1)
        if bool((top >= PURITY).all()):
            unit_label = table.idxmax(axis=1).to_numpy().astype(str)  # ties: the first label in sorted order
            per_class = {str(c): int((unit_label == c).sum()) for c in np.unique(y)}
            return InferenceUnit("group", group_noun, codes, unit_label, per_class)
    per_class = {str(c): int(n) for c, n in zip(*np.unique(y, return_counts=True), strict=True)}
    return InferenceUnit("clip", "clip", np.arange(len(y)), y, per_class)


def unit_from_manifest(manifest: Mapping, task: str) -> dict:
    """manifest.json's ``cv[task].unit`` (empty for runs written before it existed)."""
    return dict((((manifest or {}).get("cv") or {}).get(task) or {}).get("unit") or {})


def _manifest(run_dir: Path) -> dict:
    """The run's manifest.json, or {} when it is missing or unreadable (its reader reports that)."""
    path = Path(run_dir) / "manifest.json"
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {}


def unit_note(run_dir: Path, task: str, what: str) -> str:
    """Why ``what`` is not computed for ``task`` of the run in ``run_dir`` ("" when it is)."""
    return too_few_text(unit_from_manifest(_manifest(run_dir), task), what)


def group_noun(run_dir: Path, task: str) -> str | None:
    """What a group of ``task`` is, from the run's manifest.json (``cv[task].unit.noun``); None when the run
    does not say (older runs, or no manifest yet)."""
    manifest = _manifest(run_dir)
    unit = unit_from_manifest(manifest, task)
    return (((manifest.get("cv") or {}).get(task) or {}).get("group_name") or unit.get("noun")) if unit else None


def too_few_text(unit: Mapping, what: str) -> str:
    """:meth:`InferenceUnit.too_few` from a manifest entry (``unit_from_manifest``); "" when enough or unknown."""
    if not unit or unit.get("enough", True):
        return ""
    noun, n = unit.get("noun", "unit"), int(unit.get("min_per_class", 0))
    need = int(unit.get("min_units_per_class", MIN_UNITS_PER_CLASS))
    return f"{plural(noun, n)} in the smallest class: too few for {what} (needs {need} per class)"


def relabelings(unit_label: np.ndarray) -> np.ndarray:
    """Every distinct arrangement of ``unit_label`` (class codes per unit) that keeps each class's count,
    the observed one first: ``(n_relabelings, n_units)``. Call only when :meth:`InferenceUnit.n_relabelings`
    is small."""
    u = np.asarray(unit_label)
    classes = list(dict.fromkeys(u.tolist()))

    def place(free: tuple[int, ...], rest: list) -> list[dict]:
        if not rest:
            return [{}]
        c, k = rest[0], int((u == rest[0]).sum())
        out = []
        for chosen in combinations(free, k):
            left = tuple(i for i in free if i not in chosen)
            out += [{c: chosen, **tail} for tail in place(left, rest[1:])]
        return out

    rows = []
    for assignment in place(tuple(range(len(u))), classes):
        row = np.empty_like(u)
        for c, where in assignment.items():
            row[list(where)] = c
        rows.append(row)
    table = np.stack(rows)
    first = int(np.flatnonzero((table == u).all(axis=1))[0])
    return table[[first, *(i for i in range(len(table)) if i != first)]]


def log_relabelings(blocks: Sequence[np.ndarray]) -> float:
    """log of the number of distinct labellings when labels are permuted within each block (each block's
    multinomial, multiplied): how small a p-value the permutation scheme can reach."""
    total = 0.0
    for block in blocks:
        _, counts = np.unique(np.asarray(block), return_counts=True)
        total += lgamma(counts.sum() + 1) - sum(lgamma(c + 1) for c in counts)
    return total


_SCHEME_WORDS = {
    "stratified-kfold": "stratified {k}-fold cross-validation over clips (not grouped)",
    "stratified-group-kfold": "{k}-fold cross-validation grouped by {noun} ({groups})",
    "leave-one-group-out": "leave-one-{noun}-out cross-validation ({k} folds, one per {noun})",
}


def fold_plan_text(cv: Mapping, noun: str | None = None) -> str:
    """manifest.json's ``cv[task]`` in words: "5-fold cross-validation grouped by speaker (24 speakers),
    5 repeats (25 folds)", "leave-one-language-out cross-validation (2 folds, one per language)"; "" if unknown."""
    scheme, k = cv.get("scheme"), cv.get("n_splits")
    if scheme not in _SCHEME_WORDS or not k:
        return ""
    noun = noun or cv.get("group_name") or "group"
    groups = plural(noun, int(cv["n_groups"])) if cv.get("n_groups") else f"{noun}s"
    text = _SCHEME_WORDS[scheme].format(k=int(k), noun=noun, groups=groups).replace("grouped by group ", "grouped ")
    repeats = int(cv.get("repeats") or 1)
    total = int(cv.get("n_folds_total") or repeats * int(k))
    return text + (f", {repeats} repeats ({total} folds)" if repeats > 1 else "")


def unit_text(unit: Mapping) -> str:
    """The unit of inference in words: "unit: speakers (4; 2 per class) — the label is constant within
    each speaker"; "unit: clips (120)"."""
    if not unit:
        return ""
    noun, n = unit.get("noun", "unit"), int(unit.get("n_units", 0))
    per = ", ".join(f"{c} {v}" for c, v in (unit.get("per_class") or {}).items())
    why = f"; the label is constant within each {noun}" if unit.get("kind") == "group" else ""
    return f"unit of inference: {plural(noun, n)} ({per}){why}"


def plan_facts(describe: dict, labels, groups, noun: str) -> dict:
    """manifest.json's ``cv[task]``: the plan's :meth:`CVPlan.describe` plus ``group_name``, ``plan`` (in
    words), ``unit`` (:meth:`InferenceUnit.describe`) and ``unit_text``."""
    out = {**describe, "group_name": noun if describe.get("grouped") else ""}
    g = groups if describe.get("grouped") else None
    out["unit"] = inference_unit(labels, g, noun).describe()
    out["plan"] = fold_plan_text(out, noun)
    out["unit_text"] = unit_text(out["unit"])
    return out


def withheld(manifest: Mapping, what: str) -> dict[str, str]:
    """Task -> why ``what`` (e.g. "a paired gap") is not computed, for every task of manifest.json ``cv``
    whose unit has too few per class."""
    out = {}
    for task in (manifest or {}).get("cv") or {}:
        note = too_few_text(unit_from_manifest(manifest, task), what)
        if note:
            out[task] = note
    return out


def withhold_columns(frame: pd.DataFrame, notes: Mapping[str, str], columns: Sequence[str]) -> pd.DataFrame:
    """``frame`` with ``columns`` emptied (NaN) on the rows of the tasks in ``notes`` (too few units)."""
    if frame is None or frame.empty or not notes:
        return frame
    out = frame.copy()
    rows = out["task"].isin(list(notes))
    for col in columns:
        if col in out:
            out.loc[rows, col] = np.nan
    return out


def withhold_shapes(shapes: pd.DataFrame, notes: Mapping[str, str]) -> pd.DataFrame:
    """Curve shapes of the tasks in ``notes`` made ``undetermined``: their claims rest on paired gaps
    between layers, which too few units cannot support; ``evidence`` says why."""
    if shapes is None or shapes.empty or not notes:
        return shapes
    out = shapes.copy()
    rows = out["task"].isin(list(notes))
    out.loc[rows, "shape"] = "undetermined"
    out.loc[rows, "evidence"] = out.loc[rows, "task"].map(notes)
    return out
