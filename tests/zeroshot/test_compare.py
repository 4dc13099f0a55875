"""Prompt sensitivity and the zero-shot / probe correlation on hand-made result tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from speechprobe.zeroshot.compare import bootstrap_correlation, correlations, sensitivity_table, zeroshot_vs_probe

COLS = ["model", "task", "layer", "probe", "fold", "metric", "value"]


def _results(pairs: dict[tuple[str, str], tuple[float, float]]) -> pd.DataFrame:
    """Probe rows (3 layers x 2 folds, best = the given score at layer 2) and 3 prompts x 2 modes of zero-shot."""
    rows = []
    for (model, task), (probe, zs) in pairs.items():
        for layer in range(3):
            for fold in range(2):
                rows.append(
                    (model, task, layer, "mlp", fold, "macro_f1", probe - 0.1 * (2 - layer) + (0.01 if fold else -0.01))
                )
        for k, prompt in enumerate(("choose", "question", "file-x")):
            rows.append((model, task, pd.NA, f"zeroshot:likelihood:{prompt}", 0, "macro_f1", zs - 0.05 * k))
            rows.append((model, task, pd.NA, f"zeroshot:generate:{prompt}", 0, "macro_f1", zs - 0.2 - 0.05 * k))
            rows.append((model, task, pd.NA, f"zeroshot:generate:{prompt}", 0, "parse_failure_rate", 0.1))
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


def test_pairs_take_the_best_prompt_and_the_best_layer_of_the_same_model():
    results = _results({("m", "t"): (0.8, 0.6), ("m", "u"): (0.7, 0.3)})
    results = pd.concat(
        [results, pd.DataFrame([("other", "t", pd.NA, "zeroshot:generate:choose", 0, "macro_f1", 0.9)], columns=COLS)]
    )
    pairs = zeroshot_vs_probe(results)
    assert list(pairs["task"]) == ["t", "u"]  # "other" has no probe rows: not paired
    first = pairs.iloc[0]
    assert first["zeroshot_f1"] == pytest.approx(0.6) and first["zeroshot_probe"] == "zeroshot:likelihood:choose"
    assert first["probe_f1"] == pytest.approx(0.8) and first["probe_layer"] == 2 and first["probe"] == "mlp"
    gen = zeroshot_vs_probe(results, mode="generate")
    assert gen.iloc[0]["zeroshot_f1"] == pytest.approx(0.4)


def test_correlations_with_bootstrap_ci():
    rng = np.random.default_rng(1)
    probe = rng.uniform(0.3, 1.0, 12)
    zs = 0.8 * probe - 0.2 + rng.normal(0, 0.03, 12)
    pairs = {(f"m{i % 3}", f"t{i}"): (p, z) for i, (p, z) in enumerate(zip(probe, zs))}
    corr = correlations(_results(pairs), n_boot=500)
    assert set(corr["selection"]) == {"best", "likelihood", "generate"}
    best = corr[corr["selection"] == "best"].set_index("method")
    for method in ("spearman", "pearson"):
        r = best.loc[method]
        assert r["r"] > 0.9 and r["ci_low"] <= r["r"] <= r["ci_high"] <= 1.0 and r["p_value"] < 1e-3
        assert r["n_pairs"] == 12 and r["n_boot"] == 500
    again = correlations(_results(pairs), n_boot=500)
    pd.testing.assert_frame_equal(corr, again)  # seeded bootstrap
    perfect = bootstrap_correlation([1, 2, 3, 4], [2, 4, 6, 8], "spearman", n_boot=200)
    assert perfect["r"] == pytest.approx(1.0) and perfect["ci_low"] == pytest.approx(1.0)
    few = bootstrap_correlation([0.1, 0.2], [0.3, 0.1], "pearson")
    assert np.isnan(few["r"]) and np.isnan(few["ci_low"]) and few["n_pairs"] == 2
