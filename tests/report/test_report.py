"""build_report on hand-made run directories: complete, analysed, partial, broken; analyse_features."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from synthetic_run import MODELS, SMALL, TASKS, make_features, make_manifest, make_results, write_run

from speechprobe.analysis import CHANCE_COLUMNS, PERMUTATION_COLUMNS, analyse_features
from speechprobe.errors import SpeechprobeError
from speechprobe.report import MAIN_TABLE_COLUMNS, build_report, load_run

BOTH = ["selection", "embeddings"]  # the analyses `speechprobe report --permutations N --embeddings` runs
IMG = re.compile(r"<img src='data:image/(?:png|webp);base64,([A-Za-z0-9+/=]+)' alt='([^']*)'>")


def _decode(data: bytes) -> np.ndarray:
    """An embedded PNG or WebP as an RGB array in [0, 1]."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=float) / 255


def _images(page: str) -> list[np.ndarray]:
    return [_decode(base64.b64decode(data)) for data, _ in IMG.findall(page)]


def _static(page: str) -> int:
    """Figures drawn as inlined PNGs (the interactive ones are Plotly divs)."""
    return page.count("<figcaption>") - page.count("<figure class='interactive'")


def _findings_rows(run_dir: Path, title: str = "Per model and task") -> dict[tuple[str, str], dict[str, str]]:
    """The findings table of report.md as {(task, model): {column: cell}}."""
    md = (run_dir / "report.md").read_text().split(f"### {title}\n", 1)[1]
    lines = md[md.index("\n|") + 1 :].split("\n\n", 1)[0].splitlines()
    split = [[c.strip().replace("\\", "") for c in line.strip("|").split(" | ")] for line in lines]
    head = split[0]
    return {(r[0], r[1]): dict(zip(head, r)) for r in split[2:]}


def _loader(features: dict):
    return lambda model, hashes: np.stack([features[model][h] for h in hashes])


@pytest.fixture(scope="module")
def built_run(tmp_path_factory) -> Path:
    """A complete synthetic run with its report built once for the read-only tests."""
    run = write_run(tmp_path_factory.mktemp("built") / "run")
    assert build_report(run) == run / "report.html"
    return run


def test_report_from_synthetic_run(built_run: Path) -> None:
    run_dir = built_run
    page = (run_dir / "report.html").read_text()
    # One self-contained file: no external URLs in src/href, no <link>, figures inlined.
    markup = re.sub(r"<script>.*?</script>", "", page, flags=re.S)  # plotly.js holds href strings of its own
    assert not re.search(r"""(src|href)=['"](?!data:|#)""", markup) and "<script src" not in page
    assert "<link" not in markup and "http://" not in markup and "https://" not in markup
    images = _images(page)
    assert len(images) == _static(page) >= 3  # heatmaps, zero-shot
    assert page.count("<figure class='interactive'") >= len(TASKS) + 1  # the headline and one curve figure per task
    for img in images:
        assert img.shape[0] > 100 and img.shape[1] > 100 and float(img[..., :3].std()) > 0.01
    # Findings as a table (one row per model and task), the main table's numbers.
    rows = _findings_rows(run_dir)
    emo = rows[("emotion", "whisper-base")]
    assert (emo["probe"], emo["layer"], emo["layers"], emo["depth"], emo["n_folds"]) == ("knn", "3", "7", "0.500", "5")
    main = pd.read_csv(run_dir / "main_table.csv").set_index(["task", "model"]).loc[("emotion", "whisper-base")]
    assert float(emo["macro_f1"]) == round(main["macro_f1"], 3) and float(emo["ci95"]) == round(main["ci95"], 3)
    assert (emo["baseline"], emo["chance"]) == ("librosa", "0.250")
    assert float(emo["gain"]) == round(main["gain"], 3)
    # Shapes are claims with the intervals of their defining differences (corrected resampled t).
    shape = "shape (not tested for selection)"
    assert re.fullmatch(r"peaked \(best − first \+0\.\d{3} \[\+0\.\d{3}, \+0\.\d{3}\]; best − last .*", emo[shape])
    assert "concave, curvature" in emo[shape]
    assert rows[("keyword", "whisper-base")][shape].startswith("dipped (first − worst +0.")
    assert {r["probe"] for r in rows.values()} == {"knn"}  # the primary probe (knn) alone defines the best layer
    assert rows[("gender", "whisper-tiny")]["depth"] == "1.000"
    assert "In whisper-base, paralinguistic tasks peak at mean relative depth" in page
    assert "Folds for task keyword were not grouped by speaker" in page
    assert page.count("not grouped") == 1  # the manifest's own warning for the same task is not repeated
    # Sortable tables, the curve rule, run details.
    assert page.count("<table class='sortable'") >= 9 and "addEventListener('click'" in page
    for heading in (
        "Main table",
        "Layer-curve shapes",
        "Gain over the hand-crafted baselines",
        "Paralinguistic vs non-paralinguistic tasks",
        "Chance levels",
        "Zero-shot vs probes",
        "Configuration",
        "Versions",
        "Skipped items",
        "Models",
    ):
        assert heading in page
    assert "least-squares quadratic" in page and "bad.wav" in page and "empty audio" in page
    assert "No permutation.csv" in page
    assert "Missing or partial data" not in page
    # Figures on disk, PNG and SVG.
    figs = run_dir / "figures"
    for name in (
        "layers_emotion",
        "headline",
        "heatmap_best",
        "heatmap_layers_whisper-base",
        "zeroshot_vs_probe",
    ):
        assert (figs / f"{name}.png").stat().st_size > 0 and (figs / f"{name}.svg").stat().st_size > 0
    assert not list(run_dir.rglob("*.tmp"))


def test_main_table_and_markdown(built_run: Path) -> None:
    run_dir = built_run
    table = pd.read_csv(run_dir / "main_table.csv")
    secondary = ["secondary_mlp_layer", "secondary_mlp_macro_f1"]
    assert list(table.columns) == [*MAIN_TABLE_COLUMNS, "mfcc", "librosa", *secondary]
    assert len(table) == len(TASKS) * 2 and set(table["model"]) == {"whisper-base", "whisper-tiny"}
    emo = table[(table["task"] == "emotion") & (table["model"] == "whisper-base")].iloc[0]
    assert emo["layer"] == 3 and emo["relative_depth"] == pytest.approx(0.5) and emo["num_layers"] == 7
    # The primary probe (knn) defines the row although mlp scores 0.03 higher; mlp is a secondary column.
    assert emo["probe"] == "knn" and set(table["probe"]) == {"knn"}
    assert emo["secondary_mlp_macro_f1"] == pytest.approx(emo["macro_f1"] + 0.03, abs=0.03)
    assert emo["best_baseline"] == "librosa" and emo["gain"] == pytest.approx(emo["macro_f1"] - emo["librosa"])
    assert emo["chance_macro_f1"] == pytest.approx(0.25) and emo["n_folds"] == 5
    # four balanced classes: always-majority Macro-F1 2(1/4)/(1 + 1/4)/4 = 0.1; stratified 1/4 and 1/4
    assert emo[["majority_macro_f1", "majority_accuracy"]].tolist() == pytest.approx([0.1, 0.25])
    assert emo[["stratified_macro_f1", "stratified_accuracy"]].tolist() == pytest.approx([0.25, 0.25])
    tex = (run_dir / "main_table.tex").read_text()
    assert "& 0.100 / 0.25 & 0.250 / 0.25 \\\\" in tex and "Majority & Stratified" in tex
    assert r"\begin{tabular}{lrrrrrrrr}" in tex and r"\toprule" in tex and r"\bottomrule" in tex
    assert r"\multicolumn{2}{c}{whisper-base}" in tex and "$\\pm$" in tex and r"\textbf{" in tex
    assert tex.count(r" \\") >= len(TASKS) + 2 and "3 (0.50)" in tex
    md = (run_dir / "report.md").read_text()
    assert md.startswith("# speechprobe report") and "## Findings" in md and "### Per model and task" in md
    assert "| task | model | probe | layer |" in md
    for ref in re.findall(r"!\[Figure \d+\]\(([^)]+)\)", md):
        assert (run_dir / ref).is_file()
    assert len(re.findall(r"\*Figure \d+\.\*", md)) >= len(TASKS) + 2  # headline, panels per task, heatmaps


PAIR = {"tasks": ["emotion", "keyword"], "models": ["whisper-base", "mfcc"]}


@pytest.mark.slow
def test_analyse_features_then_report(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", **PAIR)
    features = make_features(run_dir)
    info = analyse_features(run_dir, _loader(features), n_permutations=9, embeddings=True, analyses=BOTH)
    assert info["n_folds"] == 5 and info["seed"] == 0 and info["n_permutations"] == 9
    assert info["primary_probe"] == "knn"
    perm = pd.read_csv(run_dir / "permutation.csv")
    chance = pd.read_csv(run_dir / "chance.csv")
    assert list(perm.columns) == PERMUTATION_COLUMNS and list(chance.columns) == CHANCE_COLUMNS
    assert len(perm) == 4 and len(chance) == 2 * (MODELS["whisper-base"] + 1)
    row = perm[(perm["model"] == "whisper-base") & (perm["task"] == "emotion")].iloc[0]
    assert row["layer"] == 3 and row["scheme"] == "within-group" and bool(row["grouped"])
    assert row["selection"] == "max over 7 layer(s)" and row["probe"] == "knn"
    assert row["p_value"] == pytest.approx(0.1) and row["observed"] > row["null_q95"]
    # Benjamini–Hochberg over the run's 4 tests: q = min over ranks >= i of p_(k) * 4 / k.
    p = perm["p_value"].to_numpy()
    order = np.argsort(p, kind="stable")
    expected = np.minimum.accumulate((p[order] * 4 / np.arange(1, 5))[::-1])[::-1].clip(max=1)
    np.testing.assert_allclose(perm["q_value"].to_numpy()[order], expected)
    kw = perm[(perm["model"] == "whisper-base") & (perm["task"] == "keyword")].iloc[0]
    assert kw["scheme"] == "within-fold" and not bool(kw["grouped"])
    emo = chance[(chance["model"] == "whisper-base") & (chance["task"] == "emotion")].set_index("layer")
    assert emo.loc[3, "above_chance"] > emo.loc[0, "above_chance"] + 0.3
    np.testing.assert_allclose(emo["above_chance"], emo["score"] - emo["chance"])
    assert (emo["p_holm"] >= emo["p_layer"]).all() and emo["relative_depth"].iloc[-1] == pytest.approx(1.0)
    for name in ("tsne_whisper-base_emotion", "tsne_mfcc_keyword"):
        assert (run_dir / "figures" / f"{name}.png").is_file() and (run_dir / "figures" / f"{name}.svg").is_file()
    assert any("umap" in n.lower() for n in info["notes"]) or any("umap_" in f for f in info["figures"])
    assert "best by the knn probe" in info["captions"]["figures/tsne_whisper-base_emotion.png"]

    # Rerun with the same settings: nothing recomputed (the loader is not even called).
    def fail(model, hashes):
        raise AssertionError("features loaded again")

    analyse_features(run_dir, fail, n_permutations=9, embeddings=True, analyses=BOTH)
    # Only what is missing is redone: one plot deleted -> one load, the tables untouched.
    before = (run_dir / "permutation.csv").read_bytes(), (run_dir / "chance.csv").read_bytes()
    (run_dir / "figures" / "tsne_mfcc_keyword.png").unlink()
    calls = []
    loader = _loader(features)
    analyse_features(
        run_dir, lambda m, h: calls.append(m) or loader(m, h), n_permutations=9, embeddings=True, analyses=BOTH
    )
    assert calls == ["mfcc"] and (run_dir / "figures" / "tsne_mfcc_keyword.png").is_file()
    assert ((run_dir / "permutation.csv").read_bytes(), (run_dir / "chance.csv").read_bytes()) == before
    # Other settings: that analysis alone is redone, for every unit.
    calls.clear()
    analyse_features(
        run_dir, lambda m, h: calls.append(m) or loader(m, h), n_permutations=19, embeddings=True, analyses=BOTH
    )
    assert sorted(calls) == ["mfcc", "mfcc", "whisper-base", "whisper-base"]
    assert set(pd.read_csv(run_dir / "permutation.csv")["n_permutations"]) == {19}
    page = build_report(run_dir).read_text()
    assert "Selection-aware permutation tests of the best layer" in page and "Empirical chance per layer" in page
    assert "layer 3 (knn) is above shuffled labels (the best of 7 layers, tested as selected: p = 0.05, q = " in page
    # The hand-made results put keyword's best layer at 0, the features at 2: the test is of what the features say.
    assert "the best knn layer recomputed from the features is 2, results.csv says 0" in page
    assert perm.set_index(["model", "task"]).loc[("mfcc", "keyword"), "p_value"] > 0.5  # no signal in mfcc
    assert "score above empirical chance peaks at layer" in page and "after Holm&#x27;s correction" in page
    assert "t-SNE of whisper-base on emotion" in page and "No permutation.csv" not in page
    assert len(_images(page)) == _static(page)


def test_analyse_features_skips_what_it_cannot_do(tmp_path: Path) -> None:
    manifest = make_manifest(**PAIR)
    manifest["tasks"]["keyword"]["labels"] = {"yes": 24}
    run = write_run(tmp_path / "run", manifest=manifest, **PAIR)
    clips = pd.read_csv(run / "clips" / "keyword.csv", dtype=str, keep_default_na=False)
    clips["label"] = "yes"  # one class left
    clips.to_csv(run / "clips" / "keyword.csv", index=False)

    def loader(model, hashes):
        raise SpeechprobeError(f"model {model}: features are not in the store")

    info = analyse_features(run, loader, n_permutations=3, embeddings=False, models=["whisper-base"], analyses=BOTH)
    notes = " ".join(info["notes"])
    assert "task keyword: only 1 class left" in notes
    assert "selection skipped for whisper-base × emotion: model whisper-base: features are not in the store" in notes
    assert not (run / "permutation.csv").exists()
    page = build_report(run).read_text()
    assert "task keyword has only one class left" in page and "features are not in the store" in page
    with pytest.raises(SpeechprobeError, match="manifest"):
        analyse_features(tmp_path, loader)
    with pytest.raises(SpeechprobeError, match="n_permutations"):
        analyse_features(run, loader, n_permutations=-1)
    with pytest.raises(SpeechprobeError, match="unknown analysis setting"):
        analyse_features(run, loader, probe="knn")


def test_analyse_features_parts_can_be_switched_off(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", **SMALL)
    features = make_features(run)
    info = analyse_features(run, _loader(features), n_permutations=0, embeddings=False, analyses=BOTH)
    assert not (run / "permutation.csv").exists() and not (run / "chance.csv").exists()
    assert not list(run.glob("figures/tsne_*")) and info["n_permutations"] == 0 and info["done"] == {}


def test_partial_run_still_renders(tmp_path: Path) -> None:
    results = make_results()
    results = results[~((results["model"] == "whisper-base") & (results["layer"] >= 5))]  # top layers lost
    results = results[results["task"] != "gender"]  # a task never probed
    results = results[~((results["model"] == "whisper-tiny") & (results["fold"] == 4))]  # a fold short
    manifest = make_manifest()
    manifest["tasks"]["silence"] = {
        "labels": {"quiet": 20},
        "paralinguistic": True,
        "grouped_folds": True,
        "n_clips": 20,
    }
    manifest["chance"]["silence"] = {"num_classes": 1.0, "macro_f1": 1.0, "majority_macro_f1": 1.0}
    run = write_run(tmp_path / "run", results, manifest)
    page = build_report(run).read_text()
    assert "Missing or partial data" in page
    assert "task gender: no probe results" in page
    assert "task silence has only one class left (&#x27;quiet&#x27;); it cannot be probed" in page
    assert "whisper-base × emotion: layer(s) 5–6 missing of 7 (kmeans, knn, mlp)" in page
    assert "whisper-tiny × keyword: only 4 of 5 folds at 5 layer(s)" in page
    assert _findings_rows(run)[("emotion", "whisper-base")]["depth"] == "0.500"  # relative depth from the manifest
    assert len(_images(page)) == _static(page) > 0
    table = pd.read_csv(run / "main_table.csv")
    assert set(table["task"]) == {"emotion", "keyword"}


@pytest.mark.parametrize("damage", ["no-results", "no-manifest", "garbage", "empty", "summary-only", "nan-values"])
def test_broken_run_dirs_render(tmp_path: Path, damage: str) -> None:
    run = write_run(tmp_path / "run", **SMALL)
    if damage == "no-results":
        (run / "results.csv").unlink()
    elif damage == "no-manifest":
        (run / "manifest.json").unlink()
    elif damage == "garbage":
        (run / "results.csv").write_text("a,b\n1,2\n")
        (run / "manifest.json").write_text("[1, 2")
    elif damage == "empty":
        (run / "results.csv").write_text("model,task,layer,probe,fold,metric,value\n")
        (run / "manifest.json").write_text("{}")
    elif damage == "summary-only":
        from speechprobe.analysis import summarize_run

        summarize_run(run)
        (run / "results.csv").unlink()
    elif damage == "nan-values":
        text = (run / "results.csv").read_text().splitlines()
        text[1] = ",".join(text[1].split(",")[:-1] + ["oops"])
        (run / "results.csv").write_text("\n".join(text) + "\n")
    page = build_report(run).read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert (run / "report.md").is_file() and (run / "main_table.tex").is_file() and (run / "main_table.csv").is_file()
    expected = {
        "no-results": "results.csv is missing",
        "no-manifest": "manifest.json is missing",
        "garbage": "results.csv cannot be used (results table lacks column(s)",
        "empty": "results.csv holds no rows",
        "summary-only": "scores come from summary.csv",
        "nan-values": "results.csv has 1 row(s) without a numeric value",
    }[damage]
    assert expected in page
    if damage in ("no-results", "garbage", "empty"):
        assert "No probe scores are available" in page
    else:
        assert "emotion" in {task for task, _ in _findings_rows(run)} and "<img " in page
    assert len(_images(page)) == _static(page)


@pytest.mark.slow
def test_only_figures_of_this_run_are_shown(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", **SMALL)
    (run / "figures").mkdir()
    for name in ("custom.png", "stale.png"):
        mpimg.imsave(run / "figures" / name, np.random.default_rng(0).random((20, 30, 3)))
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps({**manifest, "figures": ["figures/custom.png"]}))
    page = build_report(run).read_text()
    assert "Figure custom.png of this run." in page  # listed in manifest.json
    assert "stale.png" not in page  # figures/ is never globbed: another run's leftovers stay out
    assert len(_images(page)) == _static(page)


def test_load_run_and_missing_directory(tmp_path: Path, run_dir: Path) -> None:
    data = load_run(run_dir)
    assert data.problems == [] and data.depths["whisper-base"] == 7 and data.baselines[:2] == ["mfcc", "librosa"]
    assert load_run(tmp_path / "nope").problems
    with pytest.raises(SpeechprobeError, match="no such run directory"):
        build_report(tmp_path / "nope")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["tasks"]["keyword"]["grouped_folds"] is False


def test_embedded_figures_are_compact_and_look_the_same(tmp_path):
    """The report embeds figures as a 128-colour palette in lossless WebP: smaller, same size, nearly the same
    colours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from speechprobe.report.page import compact_image

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.imshow(np.linspace(0, 1, 400).reshape(20, 20), cmap="viridis")
    ax.plot([0, 19], [0, 19], color="tab:red")
    fig.savefig(tmp_path / "f.png", dpi=120)
    plt.close(fig)
    data = (tmp_path / "f.png").read_bytes()
    small, mime = compact_image(data)
    before, after = _decode(data), _decode(small)
    assert mime == "image/webp" and small[8:12] == b"WEBP"  # lossless WebP of the 128-colour palette image
    assert len(small) < 0.5 * len(data) and before.shape == after.shape
    diff = np.abs(before - after)
    assert np.quantile(diff, 0.99) < 0.06 and diff.mean() < 0.005  # a few anti-aliased edge pixels shift more
    assert compact_image(b"not a png") == (b"not a png", "image/png")


def test_the_fold_plan_is_named_with_its_repeats(tmp_path):
    from speechprobe.report.load import RunData

    def plan(**config):
        return RunData(tmp_path, manifest={"config": config}).fold_plan

    assert plan(folds=5, repeats=5) == "5 × 5 folds (5 repeats)"
    assert plan(folds=5, repeats=1) == plan(folds=5) == "5 folds"
    assert plan() == ""
