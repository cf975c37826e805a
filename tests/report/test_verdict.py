"""The report's verdict and warnings say what the stored numbers say, including losses."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

import pertspectra as ps
from pertspectra.report import Results, scorecard_verdict, similarity_verdict, warnings_of


def _card(ours: list[float], additive: list[float], mse_ours: float, mse_add: float):
    rows = []
    for i, (a, b) in enumerate(zip(ours, additive, strict=True)):
        for method, r, mse in (("pertspectra", a, mse_ours), ("additive", b, mse_add),
                               ("ceiling", 0.95, 0.1)):  # fmt: skip
            rows += [
                ("combinations", "", 0, f"A{i}+B{i}", method, "pearson_delta", r),
                ("combinations", "", 0, f"A{i}+B{i}", method, "mse_top20", mse),
            ]
    metrics = pd.DataFrame(rows, columns=ps.evaluate._summary.METRIC_COLUMNS)
    return ps.evaluate.Scorecard(
        metrics, ps.evaluate.summarize(metrics), pd.DataFrame(),
        settings={"fits": {"pertspectra": {}}},
    )  # fmt: skip


def test_verdict_names_the_winner_and_the_metrics_a_baseline_wins():
    text = " ".join(scorecard_verdict(_card([0.8, 0.7, 0.9, 0.6], [0.5, 0.6, 0.7, 0.7], 0.5, 0.3)))
    assert "Pearson-delta 0.750, above the best baseline (additive: 0.625)" in text
    assert "better on 75% of the labels" in text
    assert "ceiling" in text
    assert "0.950" in text
    assert "The additive baseline wins on mse_top20 (0.500 vs 0.300)" in text
    worse = " ".join(scorecard_verdict(_card([0.1, 0.2], [0.5, 0.6], 0.3, 0.5)))
    assert "below the best baseline (additive: 0.550)" in worse
    assert "better on 0% of the labels" in worse
    assert "wins on" not in worse


def test_verdict_calls_a_difference_below_the_printed_precision_a_tie():
    # a fit at the training means differs from them in the fifth digit, not the third
    text = " ".join(scorecard_verdict(_card([0.81262, 0.7], [0.81260, 0.7], 0.28257, 0.28254)))
    assert "Pearson-delta 0.756, level with the best baseline (additive: 0.756)" in text
    assert "It ties the additive baseline on mse_top20 (0.283)" in text
    assert "wins on" not in text
    close = " ".join(scorecard_verdict(_card([0.8, 0.7], [0.8, 0.698], 0.2826, 0.2814)))
    assert "above the best baseline (additive: 0.749)" in close
    assert "The additive baseline wins on mse_top20 (0.283 vs 0.281)" in close


def test_similarity_verdict_top_pair_and_benchmark():
    sim = pd.DataFrame(
        [[1.0, 0.9, 0.1], [0.9, 1.0, 0.2], [0.1, 0.2, 1.0]],
        index=["A", "B", "C"], columns=["A", "B", "C"],
    )  # fmt: skip
    bench = pd.DataFrame({
        "pairs_file": ["corum", "corum"], "embedding": ["gene_change", "data_change"],
        "metric": ["correlation"] * 2, "score": ["average_precision"] * 2, "value": [0.6, 0.4],
        "prevalence": [0.33, 0.33], "n_positive": [1, 1], "p_value": [0.02, 0.1],
    })  # fmt: skip
    lines = similarity_verdict(
        {
            "similarity": sim,
            "clusters": None,
            "benchmark": bench,
            "settings": {"embedding": "gene_change", "metric": "correlation"},
        }
    )
    assert lines[0].startswith("Most alike (gene_change, correlation): A-B (0.90)")
    assert "average precision 0.600 vs 0.330 by chance (permutation p = 0.02)" in lines[1]
    assert "the observed changes alone reach 0.400" in lines[1]


def test_warnings_for_unconverged_fit_and_too_many_factors(toy_model, toy_stats):
    done = replace(
        toy_model,
        training={**toy_model.training, "converged": True, "stop_reason": "converged after 1250"},
    )
    res = Results(path=Path("."), model=done)
    assert not any("did not converge" in w for w in warnings_of(res))
    stuck = replace(
        toy_model,
        training={
            **toy_model.training,
            "converged": False,
            "stop_reason": "reached max_epochs=300",
        },
    )
    assert any(
        "did not converge (reached max_epochs=300)" in w
        for w in warnings_of(Results(Path("."), model=stuck))
    )
    with pytest.warns(UserWarning, match="factors for"):
        wide = ps.train.fit(toy_stats, n_factors=toy_stats.n_vars, max_epochs=5, progress=False)
    assert any("factors for" in w for w in warnings_of(Results(Path("."), model=wide)))
