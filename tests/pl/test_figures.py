"""Each figure returns its Axes and draws exactly the data it is given (checked on artists)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import pertspectra as ps
from pertspectra import pl


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _image(ax):
    return np.asarray(ax.images[0].get_array())


def test_loss_draws_total_and_parts_and_steps():
    t = {
        "loss_history": [10.0, 6.0, 4.0, 3.5], "recon_history": [8.0, 5.0, 3.5, 3.2],
        "graph_history": [2.0, 1.0, 0.5, 0.3], "lr_steps": [2], "learning_rates": [1.0, 0.1],
        "stop_reason": "reached max_epochs=4",
    }  # fmt: skip
    ax = pl.loss(t)
    ys = [list(line.get_ydata()) for line in ax.get_lines() if len(line.get_ydata()) == 4]
    assert t["loss_history"] in ys
    assert t["recon_history"] in ys
    assert t["graph_history"] in ys
    assert "max_epochs" in ax.get_title()
    with pytest.raises(ValueError, match="loss_history"):
        pl.loss({"loss_history": []})
    with pytest.raises(ValueError, match="recon_history"):
        pl.loss({"loss_history": [1.0, 2.0], "recon_history": [1.0]})


def test_loss_of_a_fitted_model(toy_model):
    ax = pl.loss(toy_model)
    assert any(len(line.get_ydata()) == toy_model.training["epochs"] for line in ax.get_lines())


def _metrics():
    rows = []
    for i in range(6):
        for method, v in (("pertspectra", 0.8), ("additive", 0.6), ("ceiling", 0.9)):
            rows.append(("combinations", "", 0, f"A{i}+B", method, "pearson_delta", v + 0.01 * i))
            rows.append(("combinations", "", 0, f"A{i}+B", method, "mse_top20", 1 - v))
    return pd.DataFrame(
        rows, columns=["regime", "condition", "fold", "label", "method", "metric", "value"]
    )


def test_scorecard_boxes_points_and_win_rates():
    metrics = _metrics()
    summary = ps.evaluate.summarize(metrics)
    ax = pl.scorecard(metrics, summary=summary)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["pertspectra", "additive", "ceiling"]
    points = np.concatenate(
        [c.get_offsets()[:, 1] for c in ax.collections if len(c.get_offsets()) == 6]
    )
    np.testing.assert_allclose(
        np.sort(points), np.sort(metrics.query("metric == 'pearson_delta'")["value"])
    )
    assert any("wins 100%" in t.get_text() for t in ax.texts)
    with pytest.raises(ValueError, match="regime"):
        pl.scorecard(metrics, regime="cells")


def test_win_rates_heat_map_values():
    summary = ps.evaluate.summarize(_metrics())
    ax = pl.win_rates(summary)
    grid = _image(ax)
    assert grid.shape == (2, 2)  # metrics x (additive, ceiling)
    assert np.nanmax(grid) == 1.0
    assert np.nanmin(grid) == 0.0
    with pytest.raises(ValueError, match="no win rate"):
        pl.win_rates(summary, method="nosuch")


def test_predicted_vs_observed_points_per_label():
    genes = [f"g{i}" for i in range(5)]
    obs = pd.DataFrame(np.arange(10.0).reshape(2, 5), index=["A", "B"], columns=genes)
    pred = obs * 0.5
    control = pd.Series(0.0, index=genes)
    ax = pl.predicted_vs_observed(pred, obs, control, labels=["B"])
    (coll,) = ax.collections
    np.testing.assert_allclose(coll.get_offsets(), np.c_[obs.loc["B"], pred.loc["B"]])
    with pytest.raises(ValueError, match="labels not in both"):
        pl.predicted_vs_observed(pred, obs, control, labels=["C"])


def test_on_target_points_and_sign_share():
    table = pd.DataFrame({
        "label": ["A", "B", "C"], "gene": ["A", "B", "C"], "observed": [-1.0, -0.5, -2.0],
        "predicted": [-0.8, 0.1, -1.5],
    })  # fmt: skip
    ax = pl.on_target(table)
    np.testing.assert_allclose(ax.collections[0].get_offsets(), table[["observed", "predicted"]])
    assert "67% of 3" in ax.get_title()
    assert {t.get_text() for t in ax.texts} == {"A", "B", "C"}
    with pytest.raises(ValueError, match="lacks the columns"):
        pl.on_target(table.drop(columns="gene"))


def test_programs_heat_map_matrix_and_names():
    genes = pd.DataFrame({
        "program": ["f0", "f0", "f1", "f1"], "rank": [1, 2, 1, 2],
        "gene": ["a", "b", "c", "a"], "weight": [0.5, 0.3, 0.6, 0.2],
    })  # fmt: skip
    ax = pl.programs(genes, names={"f0": "f0: interferon response"}, n_genes=2)
    np.testing.assert_allclose(_image(ax), [[0.5, 0.2], [0.3, 0.0], [0.0, 0.6]])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["f0: interferon response", "f1"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="not in genes"):
        pl.programs(genes, programs=["f9"])


def test_perturbation_programs_matrix_symmetric_limits():
    table = pd.DataFrame({
        "label": ["A", "A", "B", "B"], "program": ["f0", "f1", "f0", "f1"],
        "effect": [2.0, -1.0, 0.5, 4.0],
    })  # fmt: skip
    ax = pl.perturbation_programs(table, cluster=False)
    rows = [t.get_text() for t in ax.get_yticklabels()]
    cols = [t.get_text() for t in ax.get_xticklabels()]
    want = table.pivot_table(index="label", columns="program", values="effect").loc[rows, cols]
    np.testing.assert_allclose(_image(ax), want.to_numpy())
    assert ax.images[0].get_clim() == (-4.0, 4.0)


def test_similarity_ordered_heat_map_and_cluster_legend():
    labels = ["A", "B", "C", "D"]
    sim = pd.DataFrame(
        [[1, 0.9, -0.2, -0.1], [0.9, 1, -0.3, 0.0], [-0.2, -0.3, 1, 0.8], [-0.1, 0.0, 0.8, 1]],
        index=labels, columns=labels, dtype=float,
    )  # fmt: skip
    clusters = pd.Series([1, 1, 2, 2], index=labels)
    ax = pl.similarity(sim, clusters=clusters, terms={1: "term one", 2: "term two"})
    order = [t.get_text() for t in ax.get_yticklabels()]
    np.testing.assert_allclose(_image(ax), sim.loc[order, order].to_numpy())
    assert {order.index("A"), order.index("B")} in ({0, 1}, {2, 3})  # clusters kept together
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["1: term one", "2: term two"] or legend == ["2: term two", "1: term one"]
    with pytest.raises(ValueError, match="square"):
        pl.similarity(sim.iloc[:2])


def test_precision_recall_lines_and_chance():
    curves = pd.DataFrame({
        "pairs_file": ["corum"] * 3, "embedding": ["gene_change"] * 3,
        "recall": [0.0, 0.5, 1.0], "precision": [1.0, 0.6, 0.2],
        "average_precision": [0.7] * 3, "prevalence": [0.2] * 3,
    })  # fmt: skip
    ax = pl.precision_recall(curves)
    lines = ax.get_lines()
    np.testing.assert_allclose(lines[0].get_ydata(), [1.0, 0.6, 0.2])
    assert any(np.allclose(line.get_ydata(), 0.2) for line in lines[1:])
    assert "AP 0.700" in ax.get_legend().get_texts()[0].get_text()


def test_interaction_bars_are_the_changes():
    genes = ["g0", "g1", "g2"]
    control = pd.Series([1.0, 1.0, 1.0], index=genes)
    obs = pd.Series([3.0, 0.0, 1.5], index=genes)
    add = pd.Series([2.0, 1.0, 1.0], index=genes)
    pred = pd.Series([2.5, 0.5, 1.2], index=genes)
    ax = pl.interaction(obs, add, pred, control=control, n_genes=2, label="A+B")
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(
        heights, [2.0, -1.0, 1.0, 0.0, 1.5, -0.5]
    )  # by profile, top genes g0, g1
    assert [t.get_text() for t in ax.get_xticklabels()] == ["g0", "g1"]
    assert ax.get_title() == "A+B"


def test_interaction_summary_points_and_share():
    ax = pl.interaction_summary(_metrics())
    np.testing.assert_allclose(ax.collections[0].get_offsets()[:, 0], 0.6 + 0.01 * np.arange(6))
    assert "better on 100% of 6" in ax.get_title()
    ax = pl.interaction_summary(_metrics(), metric="mse_top20")
    assert "lower is better" in ax.get_title()
    with pytest.raises(ValueError, match="nosuch"):
        pl.interaction_summary(_metrics(), method="nosuch")


def test_prior_coverage_bars():
    report = {
        "n_genes": 100, "n_genes_with_edges": 60, "n_edges": 300, "n_perturbed": 10,
        "perturbed_without_edges": ["A", "B"], "perturbed_not_measured": ["C"],
    }  # fmt: skip
    ax = pl.prior_coverage(report, degrees=np.array([0, 1, 2, 3, 5]))
    widths = [p.get_width() for p in ax.patches[:5]]
    assert widths == [60, 40, 7, 2, 1]
    assert "300 edges" in ax.get_title()
    with pytest.raises(ValueError, match="n_edges"):
        pl.prior_coverage({"n_genes": 1, "n_genes_with_edges": 0})


def test_every_figure_draws_on_a_given_axes():
    _, ax = plt.subplots()
    assert pl.loss({"loss_history": [2.0, 1.0]}, ax=ax) is ax
    _, ax = plt.subplots()
    report = {"n_genes": 3, "n_genes_with_edges": 2, "n_edges": 1}
    assert pl.prior_coverage(report, ax=ax) is ax
    _, ax = plt.subplots()
    assert pl.interaction_summary(_metrics(), ax=ax) is ax
    _, ax = plt.subplots()
    assert pl.scorecard(_metrics(), metric="mse_top20", ax=ax) is ax
