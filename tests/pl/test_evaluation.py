"""pl.scorecard, win_rates, predicted_vs_observed, on_target, interaction(_summary)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.colors import to_hex

import pertspectra as ps
from pertspectra import pl
from pertspectra.pl._style import METHOD_COLORS

from .conftest import METRIC_COLUMNS, image, tick_texts


def test_scorecard_one_box_and_the_points_per_method(metrics, combos):
    summary = ps.evaluate.summarize(combos)
    ax = pl.scorecard(combos, summary=summary)
    assert isinstance(ax, Axes)
    assert tick_texts(ax) == ["pertspectra", "additive", "ceiling"]
    block = combos[combos["metric"] == "pearson_delta"]
    for coll, method in zip(ax.collections, ["pertspectra", "additive", "ceiling"], strict=True):
        want = block.loc[block["method"] == method, "value"]
        np.testing.assert_allclose(np.sort(coll.get_offsets()[:, 1]), np.sort(want))
    (means,) = [line for line in ax.get_lines() if line.get_marker() == "D"]
    np.testing.assert_allclose(means.get_ydata(), block.groupby("method")["value"].mean()[
        ["pertspectra", "additive", "ceiling"]])  # fmt: skip
    wins = sorted(t.get_text() for t in ax.texts)
    assert wins == ["wins 0%", "wins 100%"]  # beats additive, never the ceiling


def test_scorecard_orders_models_baselines_ceiling_and_colours_by_kind(combos):
    extra = combos[combos["method"] == "additive"].assign(method="mean")
    other = combos[combos["method"] == "pertspectra"].assign(method="gears")
    table = pd.concat([combos, extra, other])
    ax = pl.scorecard(table)
    assert tick_texts(ax) == ["pertspectra", "gears", "mean", "additive", "ceiling"]
    colors = [to_hex(p.get_facecolor(), keep_alpha=False) for p in ax.patches]
    kinds = ["model", "model", "baseline", "baseline", "ceiling"]
    assert colors == [METHOD_COLORS[k] for k in kinds]


def test_scorecard_rejects_bad_input(metrics, combos):
    with pytest.raises(ValueError, match="several regimes"):
        pl.scorecard(metrics)
    with pytest.raises(ValueError, match="regime 'nosuch'"):
        pl.scorecard(metrics, regime="nosuch")
    with pytest.raises(ValueError, match="no finite 'spearman_raw'"):
        pl.scorecard(combos, metric="spearman_raw")
    with pytest.raises(ValueError, match="lacks the columns"):
        pl.scorecard(combos.drop(columns="fold"))


def test_win_rates_heat_map_is_the_summary(combos):
    summary = ps.evaluate.summarize(combos)
    ax = pl.win_rates(summary)
    assert tick_texts(ax, "y") == ["mse_top20", "pearson_delta"]
    assert tick_texts(ax) == ["additive", "ceiling"]
    rows = summary[summary["method"] == "pertspectra"]
    want = rows.pivot_table(index="metric", columns="versus", values="win_rate")
    np.testing.assert_allclose(image(ax), want.loc[["mse_top20", "pearson_delta"]].to_numpy())
    assert ax.images[0].get_clim() == (0.0, 1.0)
    assert sorted(t.get_text() for t in ax.texts) == ["0.00", "0.00", "1.00", "1.00"]
    assert len(ax.figure.axes) == 2  # the colorbar
    ax = pl.win_rates(summary, metrics=["pearson_delta"])
    assert image(ax).shape == (1, 2)


def test_win_rates_rejects_bad_input(combos):
    summary = ps.evaluate.summarize(combos)
    with pytest.raises(ValueError, match="no win rate of 'nosuch'"):
        pl.win_rates(summary, method="nosuch")
    with pytest.raises(ValueError, match="metrics without win rates"):
        pl.win_rates(summary, metrics=["rank_l1"])


GENES = [f"g{i}" for i in range(5)]


def _profiles():
    obs = pd.DataFrame(
        [[1.0, 2.0, 0.0, -1.0, 0.5], [4.0, -3.0, 2.0, 0.0, 1.0], [0.1, 0.0, 0.2, 0.1, 0.0]],
        index=["A", "B", "C"],
        columns=GENES,
    )
    control = pd.Series([0.5, 0.5, 0.5, 0.5, 0.5], index=GENES)
    pred = (obs - control) * 0.5 + control
    return pred, obs, control


def test_predicted_vs_observed_points_are_the_changes():
    pred, obs, control = _profiles()
    ax = pl.predicted_vs_observed(pred, obs, control, labels=["B"])
    (coll,) = ax.collections
    want = np.c_[obs.loc["B"] - control, pred.loc["B"] - control]
    np.testing.assert_allclose(coll.get_offsets(), want)
    assert ax.get_legend().get_texts()[0].get_text() == "B (r = 1.00)"


def test_predicted_vs_observed_default_labels_have_the_largest_change():
    pred, obs, control = _profiles()
    ax = pl.predicted_vs_observed(pred.drop(index="A"), obs, control, n_labels=2)
    legend = [t.get_text().split(" ")[0] for t in ax.get_legend().get_texts()]
    assert legend == ["B", "C", "y"]  # A is not predicted; then "y = x"
    assert [len(c.get_offsets()) for c in ax.collections] == [5, 5]


def test_predicted_vs_observed_rejects_bad_input():
    pred, obs, control = _profiles()
    with pytest.raises(ValueError, match="labels not in both"):
        pl.predicted_vs_observed(pred, obs, control, labels=["Z"])
    with pytest.raises(ValueError, match="share no gene"):
        pl.predicted_vs_observed(pred, obs, control.rename(lambda g: g + "x"))


def _on_target_table(n=3):
    rng = np.random.default_rng(0)
    observed = -np.linspace(0.1, 3.0, n)
    return pd.DataFrame(
        {
            "label": [f"L{i}" for i in range(n)],
            "gene": [f"L{i}" for i in range(n)],
            "observed": observed,
            "predicted": observed * 0.7 + rng.normal(0, 0.05, n),
        }
    )


def test_on_target_points_labels_and_sign_share():
    table = pd.DataFrame(
        {
            "label": ["A", "B", "C"],
            "gene": ["A", "B", "C"],
            "observed": [-1.0, -0.5, -2.0],
            "predicted": [-0.8, 0.1, -1.5],
        }
    )
    ax = pl.on_target(table)
    assert isinstance(ax, Axes)
    np.testing.assert_allclose(ax.collections[0].get_offsets(), table[["observed", "predicted"]])
    assert "sign matches in 67%" in ax.get_title()
    assert {t.get_text() for t in ax.texts} == {"A", "B", "C"}


def test_on_target_annotates_only_the_largest_changes():
    table = _on_target_table(50)
    ax = pl.on_target(table)
    assert len(ax.collections[0].get_offsets()) == 50
    texts = [t.get_text() for t in ax.texts]
    assert 5 <= len(texts) < 30  # the crowded ones are skipped
    assert texts[0] == "L49"  # the largest |observed| first
    assert set(texts) <= {f"L{i}" for i in range(20, 50)}
    few = [t.get_text() for t in pl.on_target(table, max_labels=3).texts]
    assert few[0] == "L49"
    assert set(few) <= {"L47", "L48", "L49"}


def test_on_target_rejects_bad_input():
    with pytest.raises(ValueError, match="lacks the columns"):
        pl.on_target(_on_target_table().drop(columns="gene"))
    with pytest.raises(ValueError, match="empty"):
        pl.on_target(_on_target_table().iloc[:0])


def test_interaction_bars_are_the_changes_of_the_top_genes():
    genes = ["g0", "g1", "g2"]
    control = pd.Series([1.0, 1.0, 1.0], index=genes)
    obs = pd.Series([3.0, 0.0, 1.5], index=genes)
    add = pd.Series([2.0, 1.0, 1.0], index=genes)
    pred = pd.Series([2.5, 0.5, 1.2], index=genes)
    ax = pl.interaction(obs, add, pred, control=control, n_genes=2, label="A+B")
    heights = [p.get_height() for p in ax.patches]
    # observed, additive, predicted; genes g0 (|+2|) then g1 (|-1|)
    np.testing.assert_allclose(heights, [2.0, -1.0, 1.0, 0.0, 1.5, -0.5])
    assert tick_texts(ax) == ["g0", "g1"]
    assert ax.get_title() == "A+B"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "observed",
        "additive",
        "predicted",
    ]
    with pytest.raises(ValueError, match="share no gene"):
        pl.interaction(obs, add, pred.rename(lambda g: g + "x"), control=control)
    with pytest.raises(ValueError, match="n_genes"):
        pl.interaction(obs, add, pred, control=control, n_genes=0)


def test_interaction_summary_one_point_per_fold_and_combination(metrics):
    ax = pl.interaction_summary(metrics)  # the cells regime is ignored
    x = ax.collections[0].get_offsets()[:, 0]
    want = metrics.query("regime == 'combinations' and method == 'additive'")
    np.testing.assert_allclose(
        np.sort(x), np.sort(want.query("metric == 'pearson_delta'")["value"])
    )
    assert "better on 100% of 12" in ax.get_title()
    assert 1 <= len(ax.texts) <= 10


def test_interaction_summary_lower_is_better():
    table = pd.DataFrame(
        [
            ("combinations", "", 0, lab, m, "mse", v)
            for lab, a, b in (("A+B", 1.0, 0.5), ("C+D", 1.0, 2.0), ("E+F", 1.0, 0.1))
            for m, v in (("additive", a), ("pertspectra", b))
        ],
        columns=METRIC_COLUMNS,
    )
    ax = pl.interaction_summary(table, metric="mse")
    assert "better on 67% of 3" in ax.get_title()
    assert "lower is better" in ax.get_title()


def test_interaction_summary_rejects_bad_input(metrics):
    with pytest.raises(ValueError, match="nosuch"):
        pl.interaction_summary(metrics, method="nosuch")
    with pytest.raises(ValueError, match="combinations"):
        pl.interaction_summary(metrics[metrics["regime"] == "cells"])
