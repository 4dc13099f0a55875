"""Zero-shot quality per (model, task, mode, prompt) from a run directory's per-clip responses.

    speechprobe zeroshot --models whisper-base --tasks language,spoken_word,gender,emotion \\
        --n-per-class 16 --prompts all --out RUN
    python benchmarks/zeroshot_quality.py RUN [--markdown]

Reads ``RUN/zeroshot/<model>/<task>.csv`` and prints, per (model, task, mode, prompt), the run's own
numbers (:func:`speechprobe.zeroshot.zeroshot_metrics` and :func:`speechprobe.zeroshot.answer_diagnostics`,
the same as ``zeroshot_diagnostics.csv``): Macro-F1, the entropy (bits) of the predicted labels against
that of the true labels, the share of the most frequent prediction (and which label it is) and the
``collapsed`` flag. Works on run directories of earlier releases too (for before/after comparisons):
it needs only the response files. The figures in docs/zeroshot.md and benchmarks/README.md come from it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from speechprobe.zeroshot import answer_diagnostics, zeroshot_metrics


def quality(responses: pd.DataFrame) -> pd.DataFrame:
    """Per (mode, prompt): n, Macro-F1, the collapse diagnostics and the most frequent prediction."""
    rows = []
    for (mode, prompt), g in responses.groupby(["mode", "prompt_id"], sort=True):
        truth = g["label"].astype(str).tolist()
        pred = [None if pd.isna(p) else str(p) for p in g["prediction"]]
        parsed = pd.Series([p for p in pred if p is not None], dtype=object)
        top = parsed.value_counts().index[0] if len(parsed) else "-"  # the label top_share counts
        scores = zeroshot_metrics(truth, pred) | answer_diagnostics(truth, pred)
        rows.append({"mode": mode, "prompt": prompt, "n": len(g), **scores, "top_label": top})
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
        print("| task | mode | prompt | n | Macro-F1 | H(pred) / H(true) bits | top share (label) | collapsed |")
        print("|---|---|---|---|---|---|---|---|")
        for r in table.itertuples(index=False):
            print(
                f"| {r.task} | {r.mode} | {r.prompt} | {r.n} | {r.macro_f1:.3f} | {r.pred_entropy:.2f} / "
                f"{r.true_entropy:.2f} | {r.top_share:.2f} ({r.top_label}) | {'yes' if r.collapsed else 'no'} |"
            )
    else:
        with pd.option_context("display.width", 200, "display.max_rows", 500):
            print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
