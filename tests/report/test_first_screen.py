"""A report people finish: the first screen's sentences (at most FIRST_SCREEN, tasks by effect size), the short
form of the cue-erasure findings with its table, and a page whose size follows its content."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import pandas as pd
import pytest
from synthetic_run import write_run

from speechprobe.analysis.erasure import SUMMARY_COLUMNS
from speechprobe.report import build_report
from speechprobe.report.analysis_findings import erasure_group
from speechprobe.report.interactive import plotly_js_packed
from speechprobe.report.takeaways import FIRST_SCREEN


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, str]:
    run = write_run(tmp_path_factory.mktemp("first") / "run")
    return run, build_report(run).read_text()


def test_the_first_screen_answers_in_few_sentences_ranked_by_effect_size(built):
    run, page = built
    summary = page.split("<section class='summary' id='summary'>", 1)[1].split("</section>", 1)[0]
    lead = re.search(r"<h2>What this shows</h2><p class='note'>(.*?)</p>", summary).group(1)
    items = [html.unescape(s) for s in re.findall(r"<li>(.*?)</li>", summary)]
    assert "effect size" in lead and 3 <= 1 + len(items) <= FIRST_SCREEN
    main = pd.read_csv(run / "main_table.csv")
    main["normalised"] = (main["macro_f1"] - main["chance_macro_f1"]) / (1 - main["chance_macro_f1"])
    best = main.loc[main.groupby("task")["normalised"].idxmax()].sort_values("normalised", ascending=False)
    task_items = items[: len(best)]
    assert [s.split(":")[0].lower() for s in task_items] == list(best["task"])  # ranked by effect size
    for sentence, row in zip(task_items, best.itertuples()):  # one number per claim: the main table's
        assert f"{row.model} layer {row.layer} of 0–{row.num_layers - 1}" in sentence
        assert f"Macro-F1 {row.macro_f1:.2f} ± {row.ci95:.2f}, normalised {row.normalised:.2f} [" in sentence
        assert f"{row.gain:+.2f} ± " in sentence
        assert f"over {row.best_baseline} ({row.baseline_macro_f1:.2f})" in sentence
    assert items[-1].endswith("(shapes not tested for selection).")


def test_cue_erasure_has_a_short_form_and_every_group_in_its_table(tmp_path):
    rows = [
        ["emotion", "m", "none", 3, "knn", True, 0.70, float("nan"), float("nan"), float("nan"), 0],
        ["emotion", "m", "f0", 3, "knn", True, 0.55, -0.15, -0.22, -0.08, 5],
        ["emotion", "m", "energy", 3, "knn", True, 0.68, -0.02, -0.09, 0.05, 5],
        ["emotion", "m", "duration", 3, "knn", True, 0.71, 0.01, -0.03, 0.05, 5],
        ["emotion", "m", "f0", 2, "knn", False, 0.50, -0.20, -0.30, -0.10, 5],  # not the best layer
        ["emotion", "mfcc", "none", 0, "knn", True, 0.40, float("nan"), float("nan"), float("nan"), 0],
        ["emotion", "mfcc", "f0", 0, "knn", True, 0.30, -0.10, -0.20, -0.01, 5],  # a baseline
        ["gender", "m", "none", 1, "knn", True, 0.95, float("nan"), float("nan"), float("nan"), 0],
        ["gender", "m", "f0", 1, "knn", True, 0.90, -0.05, -0.12, 0.02, 5],
    ]
    pd.DataFrame(rows, columns=SUMMARY_COLUMNS).to_csv(tmp_path / "erasure_summary.csv", index=False)
    (tmp_path / "analysis.json").write_text('{"repeats": 5, "cue_repeats": 1}')
    group = erasure_group(tmp_path, ["mfcc"])
    assert group.sentences == [
        "emotion in m layer 3 (its best layer, knn Macro-F1 0.70 on the first of 5 repeats): erasing F0 changes "
        "Macro-F1 by -0.15 [-0.22, -0.08]; the other 2 group(s) stay within their 95 % intervals.",
        "gender in m layer 1 (its best layer, knn Macro-F1 0.95 on the first of 5 repeats): no cue group of 1 moves "
        "it beyond its 95 % interval.",
    ]
    (table,) = group.tables
    assert list(zip(table.frame["task"], table.frame["group"])) == [
        ("emotion", "F0"),
        ("emotion", "energy"),
        ("emotion", "duration"),
        ("gender", "F0"),
    ]
    assert table.frame["delta"].tolist() == [-0.15, -0.02, 0.01, -0.05] and "first of 5 repeats" in table.note


def test_the_page_size_follows_its_content(built):
    """Beyond plotly.js, the embedded figures and the figure data, the page costs a bounded number of bytes per
    table cell and sentence: nothing is embedded twice or in a bulky form."""
    run, page = built
    images = re.findall(r"src='data:image/(?:png|webp);base64,([A-Za-z0-9+/=]+)'", page)
    specs = re.findall(r"<script type='application/json'[^>]*>(.*?)</script>", page, re.S)
    cells = page.count("<td")
    sentences = page.count("<li>")
    content = len(plotly_js_packed()) + sum(map(len, images)) + sum(map(len, specs))
    assert len(page.encode()) <= content + 80 * cells + 400 * sentences + 30_000  # the fixture: 62 kB of 107
    assert len(images) == len(set(images))  # no figure twice
    stems = re.findall(r"base64,[A-Za-z0-9+/=]+' alt='Figure \d+: ([^']+)'", page)
    on_disk = sum(next((run / "figures").rglob(f"{stem}.png")).stat().st_size for stem in stems)
    assert len(stems) == len(images) >= 3
    assert sum(len(base64.b64decode(i)) for i in images) < 0.6 * on_disk  # compact: palette, lossless WebP
