"""Zero-shot quality per (model, task, prompt, mode) from a run directory's per-clip responses.

    speechprobe zeroshot --models whisper-base --tasks language,spoken_word,gender,emotion \\
        --n-per-class 16 --prompts all --out RUN
    python benchmarks/zeroshot_quality.py RUN [--markdown]

Reads ``RUN/zeroshot/<model>/<task>.csv`` and prints, per (model, task, mode, prompt): Macro-F1 over the
task's classes, the entropy (bits) of the predicted-label distribution against that of the true labels,
and the share of the most frequent prediction (with that label). A parse failure counts as one more
"label" (``-``) in the predicted distribution. A mode that gives nearly every clip one label has a low
predicted entropy and a top share near 1 on balanced data. This is a measurement script (the figures
in docs/zeroshot.md and benchmarks/README.md), not the collapse marks of the report.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score


def entropy_bits(values: pd.Series) -> float:
    """Shannon entropy (bits) of the empirical distribution of ``values``."""
    p = values.value_counts(normalize=True).to_numpy(dtype=float)
    return max(0.0, float(-(p * np.log2(p)).sum()))


def quality(responses: pd.DataFrame) -> pd.DataFrame:
    """Per (mode, prompt): n, Macro-F1, H(pred), H(true), top share and top label."""
    rows = []
    classes = sorted(responses["label"].astype(str).unique())
    for (mode, prompt), g in responses.groupby(["mode", "prompt_id"], sort=True):
        pred = g["prediction"].fillna("-").astype(str)
        truth = g["label"].astype(str)
        counts = pred.value_counts()
        rows.append(
            {
                "mode": mode,
                "prompt": prompt,
                "n": len(g),
                "macro_f1": f1_score(truth, pred, labels=classes, average="macro", zero_division=0),
                "h_pred": entropy_bits(pred),
                "h_true": entropy_bits(truth),
                "top_share": counts.iloc[0] / len(g),
                "top_label": counts.index[0],
            }
        )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--markdown", action="store_true", help="print one markdown table")
    args = ap.parse_args(argv)
    frames = []
    for csv in sorted((args.run / "zeroshot").glob("*/*.csv")):
        responses = pd.read_csv(csv, dtype={"label": str, "prediction": str}, keep_default_na=False, na_values=[""])
        q = quality(responses)
        q.insert(0, "task", csv.stem)
        q.insert(0, "model", csv.parent.name)
        frames.append(q)
    if not frames:
        print(f"{args.run}: no zeroshot/<model>/<task>.csv", file=sys.stderr)
        return 1
    table = pd.concat(frames, ignore_index=True)
    if args.markdown:
        print("| model | task | mode | prompt | n | Macro-F1 | H(pred) / H(true) bits | top share (label) |")
        print("|---|---|---|---|---|---|---|---|")
        for r in table.itertuples(index=False):
            print(
                f"| {r.model} | {r.task} | {r.mode} | {r.prompt} | {r.n} | {r.macro_f1:.3f} | "
                f"{r.h_pred:.2f} / {r.h_true:.2f} | {r.top_share:.2f} ({r.top_label}) |"
            )
    else:
        with pd.option_context("display.width", 200, "display.max_rows", 500):
            print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
