"""Prompt sensitivity, collapse diagnostics and the zero-shot / probe correlation on hand-made result tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from speechprobe.zeroshot.compare import sensitivity_table
from speechprobe.zeroshot.diagnostics import answer_diagnostics, is_collapsed
from speechprobe.zeroshot.link import (
    bootstrap_correlation,
    correlations,
    decoder_pairs,
    default_mode,
    diagnostics_table,
    normalise,
    zeroshot_vs_probe,
)

COLS = ["model", "task", "layer", "probe", "fold", "metric", "value"]


def _results(pairs: dict, chance: float = 0.25, collapsed: set | None = None) -> pd.DataFrame:
    """Probe rows (3 layers x 2 folds of knn, best = the given score at layer 2, mlp 0.05 higher) and
    3 prompts x 2 modes of zero-shot, with the diagnostics rows the runner writes."""
    rows = []
    for (model, task), (probe, zs) in pairs.items():
        for layer in range(3):
            for fold in range(2):
                value = probe - 0.1 * (2 - layer) + (0.01 if fold else -0.01)
                rows.append((model, task, layer, "knn", fold, "macro_f1", value))
                rows.append((model, task, layer, "mlp", fold, "macro_f1", value + 0.05))
        for k, prompt in enumerate(("choose", "question", "file-x")):
            for mode, score in (("likelihood", zs - 0.05 * k), ("generate", zs - 0.2 - 0.05 * k)):
                probe_name = f"zeroshot:{mode}:{prompt}"
                flag = float((model, task, mode) in (collapsed or set()))
                for metric, value in (("macro_f1", score), ("chance_macro_f1", chance), ("collapsed", flag)):
                    rows.append((model, task, pd.NA, probe_name, 0, metric, value))
                rows.append((model, task, pd.NA, probe_name, 0, "parse_rate", 0.9 if mode == "generate" else 1.0))
    return pd.DataFrame(rows, columns=COLS)


def test_sensitivity_min_max_std_per_model_task_and_mode():
    table = sensitivity_table(_results({("m", "t"): (0.8, 0.6)}))
    lik = table[table["mode"] == "likelihood"].iloc[0]
    assert lik["n_prompts"] == 3 and lik["min"] == pytest.approx(0.5) and lik["max"] == pytest.approx(0.6)
    assert lik["std"] == pytest.approx(np.std([0.6, 0.55, 0.5], ddof=1)) and lik["range"] == pytest.approx(0.1)
    assert lik["best_prompt"] == "choose" and lik["worst_prompt"] == "file-x"
    every = table[table["mode"] == "all"].iloc[0]
    assert (
        every["n_prompts"] == 6 and every["min"] == pytest.approx(0.3) and every["best_prompt"] == "likelihood:choose"
    )
    assert sensitivity_table(_results({})).empty


def test_diagnostics_parse_rate_entropy_and_collapse():
    truth = ["a", "b", "c", "d"] * 5
    echo = answer_diagnostics(truth, [None] * 10 + ["a"] * 10)  # half the answers echo the prompt
    assert echo["parse_rate"] == 0.5 and echo["top_share"] == 0.5 and echo["pred_entropy"] == 0.0
    assert echo["true_entropy"] == pytest.approx(2.0) and echo["chance_macro_f1"] == pytest.approx(0.25)
    assert not echo["collapsed"]  # 0.5 is not above max(0.5, (1 + 0.25) / 2)
    prior = answer_diagnostics(truth, ["a"] * 14 + ["b"] * 6)  # the label prior of the decoder
    assert prior["top_share"] == 0.7 and prior["collapsed"] == 1.0
    assert prior["pred_entropy"] == pytest.approx(-(0.7 * np.log2(0.7) + 0.3 * np.log2(0.3)))
    fine = answer_diagnostics(truth, truth)
    assert fine["parse_rate"] == 1.0 and fine["pred_entropy"] == pytest.approx(2.0) and not fine["collapsed"]
    assert is_collapsed(0.76, 0.5) and not is_collapsed(0.74, 0.5)  # two balanced classes: > 0.75
    assert not is_collapsed(0.85, 0.8) and is_collapsed(0.91, 0.8)  # skewed data: beyond (1 + 0.8) / 2


def test_default_selection_never_looks_at_the_test_labels():
    assert default_mode(["generate", "likelihood", "native"]) == "native"
    assert default_mode(["generate", "likelihood_pmi", "likelihood_cc"]) == "likelihood_cc"
    assert default_mode(["generate", "zz-new", "aa-new"]) == "generate"
    assert default_mode(["zz-new", "aa-new"]) == "aa-new"
    results = _results({("m", "t"): (0.8, 0.6), ("m", "u"): (0.7, 0.3)}, chance=0.25)
    results = pd.concat(
        [results, pd.DataFrame([("other", "t", pd.NA, "zeroshot:generate:choose", 0, "macro_f1", 0.9)], columns=COLS)]
    )
    pairs = zeroshot_vs_probe(results, primary="knn", probe_chance={"t": 0.5})
    assert set(pairs["model"]) == {"m"}  # "other" has no probe rows: not paired
    default = pairs[(pairs["selection"] == "default") & (pairs["task"] == "t")].iloc[0]
    # likelihood is preferred over generate; the mean over its 3 prompts, not the best one
    assert default["mode"] == "likelihood" and default["prompt"] == "mean of 3"
    assert default["zeroshot_f1"] == pytest.approx(0.55)
    assert default["zeroshot_norm"] == pytest.approx((0.55 - 0.25) / 0.75)
    # the primary probe (knn), not the better mlp; its chance from the probed clips
    assert default["probe"] == "knn" and default["probe_f1"] == pytest.approx(0.8) and default["probe_layer"] == 2
    assert default["probe_norm"] == pytest.approx((0.8 - 0.5) / 0.5)
    oracle = pairs[(pairs["selection"] == "oracle") & (pairs["task"] == "t")].iloc[0]
    assert oracle["zeroshot_f1"] == pytest.approx(0.6) and oracle["prompt"] == "choose"
    assert normalise(0.25, 0.25) == 0 and np.isnan(normalise(0.5, 1.0))


def test_diagnostics_table_flags_collapsed_rows():
    table = diagnostics_table(_results({("m", "t"): (0.8, 0.6)}, collapsed={("m", "t", "generate")}))
    assert len(table) == 6 and table.loc[table["mode"] == "generate", "collapsed"].all()
    assert not table.loc[table["mode"] == "likelihood", "collapsed"].any()
    assert table.loc[table["mode"] == "generate", "parse_rate"].eq(0.9).all()


@pytest.mark.slow
def test_correlations_within_tasks_and_pooled_over_tasks():
    rng = np.random.default_rng(1)
    pairs = {}
    for t in range(6):
        for m in range(4):
            probe = rng.uniform(0.4, 1.0)
            pairs[(f"m{m}", f"t{t}")] = (probe, 0.8 * probe - 0.1 + rng.normal(0, 0.03))
    results = _results(pairs, collapsed={("m0", "t0", "likelihood")})
    linked = zeroshot_vs_probe(results)
    assert linked.loc[(linked["model"] == "m0") & (linked["task"] == "t0"), "collapsed"].tolist() == [True, True]
    corr = correlations(linked, n_boot=300)
    pooled = corr[(corr["scope"] == "pooled") & (corr["selection"] == "default")].set_index("method")
    for method in ("spearman", "pearson"):
        r = pooled.loc[method]
        assert r["r"] > 0.8 and r["ci_low"] <= r["r"] <= r["ci_high"] <= 1.0 and r["p_value"] < 1e-3
        assert r["n_pairs"] == 23 and r["n_collapsed"] == 1 and r["n_tasks"] == 6 and r["resampled"] == "tasks"
    both = corr[corr["selection"] == "default, collapsed included"]
    assert (both["n_pairs"] == 24).all()
    within = corr[(corr["scope"] == "task t1") & (corr["method"] == "pearson")].iloc[0]
    assert within["n_pairs"] == 4 and within["n_models"] == 4 and within["resampled"] == "models"
    assert corr[(corr["scope"] == "task t0")]["n_collapsed"].eq(1).all()
    assert set(corr.loc[corr["scope"] == "pooled", "selection"]) == {
        "default",
        "default, collapsed included",
        "oracle",
    }
    again = correlations(linked, n_boot=300)
    pd.testing.assert_frame_equal(corr, again)  # seeded bootstrap


def test_bootstrap_correlation_over_clusters():
    perfect = bootstrap_correlation([1, 2, 3, 4], [2, 4, 6, 8], "spearman", n_boot=200)
    assert perfect["r"] == pytest.approx(1.0) and perfect["ci_low"] == pytest.approx(1.0)
    few = bootstrap_correlation([0.1, 0.2], [0.3, 0.1], "pearson")
    assert np.isnan(few["r"]) and np.isnan(few["ci_low"]) and few["n_pairs"] == 2
    # Two tasks whose pairs agree inside (r = +1) but not between (pooled r < 0): resampling whole tasks
    # draws one task alone half the time, so the interval reaches +1; the pooled r stays negative.
    x = [0.1, 0.2, 0.3, 0.7, 0.8, 0.9]
    y = [0.7, 0.8, 0.9, 0.1, 0.2, 0.3]
    clustered = bootstrap_correlation(x, y, "pearson", n_boot=300, clusters=["a"] * 3 + ["b"] * 3)
    assert clustered["r"] < -0.8 and clustered["ci_high"] == pytest.approx(1.0)


def test_the_link_takes_the_decoder_state_probe_and_the_lens_as_its_representation_side(tmp_path):
    rng = np.random.default_rng(2)
    pairs = {(f"m{m}", f"t{t}"): (rng.uniform(0.5, 1.0), rng.uniform(0.3, 0.9)) for t in range(4) for m in range(2)}
    linked = zeroshot_vs_probe(_results(pairs), probe_chance={f"t{t}": 0.25 for t in range(4)})
    rows = []
    for (model, task), (_, zs) in pairs.items():  # the lens tracks the zero-shot score, the decoder state does not
        for d, (state, lens) in enumerate(((0.4, 0.3), (0.9, zs - 0.1), (0.7, zs))):
            rows.append((model, task, "decoder_probe:last", 3 + d, state))
            rows.append((model, task, "lens_bc", 3 + d, lens))
    decoder = pd.DataFrame(rows, columns=["model", "task", "side", "depth", "macro_f1"])
    extra = decoder_pairs(linked, decoder)
    state = extra[extra["selection"] == "default · decoder-state probe"]
    assert len(state) == 8 and (state["probe_layer"] == 4).all() and np.allclose(state["probe_f1"], 0.9)
    lens = extra[extra["selection"] == "default · logit lens"]
    zs = lens["zeroshot_f1"] + 0.05  # the default score: likelihood's mean over prompts scored zs, zs-0.05, zs-0.1
    assert (lens["probe_layer"] == 5).all() and np.allclose(lens["probe_norm"], (zs - 0.25) / 0.75)
    corr = correlations(pd.concat([linked, extra], ignore_index=True), n_boot=200)
    by = corr[corr["method"] == "pearson"].set_index("selection")
    assert by.loc["default · logit lens", "r"] == pytest.approx(1.0)  # one score, shifted, on both sides
    assert np.isnan(by.loc["default · decoder-state probe", "r"])  # a constant side: no correlation claimed
    assert (corr.loc[corr["selection"].str.contains("·"), "scope"] == "pooled").all()
    from speechprobe.figures.zeroshot_scatter import plot_zeroshot_vs_probe

    both = plot_zeroshot_vs_probe(pd.concat([linked, extra]), corr, tmp_path / "both.png").read_bytes()
    alone = plot_zeroshot_vs_probe(linked, corr, tmp_path / "alone.png").read_bytes()
    assert both != alone  # the decoder sides are drawn beside the encoder points
