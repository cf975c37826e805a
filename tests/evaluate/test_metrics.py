from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from pertspectra.evaluate import matched_correlation, prediction_metrics
from pertspectra.evaluate._metrics import LOWER_IS_BETTER, METRICS, rank_l1

ORDER = [
    "pearson_delta",
    "pearson_delta_top20",
    "pearson_delta_pert",
    "pearson_delta_pert_top20",
    "mse",
    "mse_top20",
    "mae",
    "mae_top20",
    "direction_top20",
    "de_overlap_20",
    "de_overlap_50",
    "spearman_raw",
    "interaction_pearson",
]


def _frame(values, prefix="g", labels=None) -> pd.DataFrame:
    values = np.atleast_2d(np.asarray(values, dtype=float))
    labels = labels if labels is not None else [f"l{i}" for i in range(values.shape[0])]
    return pd.DataFrame(
        values, index=labels, columns=[f"{prefix}{j}" for j in range(values.shape[1])]
    )


def _series(values, prefix="g") -> pd.Series:
    values = np.asarray(values, dtype=float)
    return pd.Series(values, index=[f"{prefix}{j}" for j in range(values.size)])


def _corr(a, b) -> float:
    return float(np.corrcoef(a, b)[0, 1])


@pytest.fixture
def small():
    """3 labels x 30 genes of means, a control, a perturbation mean and an additive prediction."""
    rng = np.random.default_rng(1)
    obs = rng.normal(size=(3, 30)) * 2.0 + 5.0
    pred = obs + rng.normal(size=(3, 30))
    ctrl = rng.normal(size=30) + 5.0
    ref = rng.normal(size=30) + 5.0
    add = obs + rng.normal(size=(3, 30)) * 0.5
    return pred, obs, ctrl, ref, add


def test_names_order_and_tables(small):
    pred, obs, ctrl, ref, add = small
    full = prediction_metrics(
        _frame(pred),
        _frame(obs),
        _series(ctrl),
        perturbation_mean=_series(ref),
        additive=_frame(add),
    )
    assert list(full.columns) == ORDER
    assert list(full.index) == ["l0", "l1", "l2"]
    plain = prediction_metrics(_frame(pred), _frame(obs), _series(ctrl))
    assert list(plain.columns) == [
        c for c in ORDER if "pert" not in c and c != "interaction_pearson"
    ]
    pert = prediction_metrics(
        _frame(pred), _frame(obs), _series(ctrl), perturbation_mean=_series(ref)
    )
    assert "pearson_delta_pert" in pert.columns
    assert "interaction_pearson" not in pert.columns
    assert "rank_l1" not in full.columns
    assert list(METRICS) == [*ORDER[:-1], "interaction_pearson", "rank_l1"]
    assert all(isinstance(v, str) and v for v in METRICS.values())
    assert {"mse", "mse_top20", "mae", "mae_top20", "rank_l1"} == LOWER_IS_BETTER
    # the same numbers with or without the optional columns
    pd.testing.assert_frame_equal(full[plain.columns], plain)


def test_every_metric_against_numpy(small):
    pred, obs, ctrl, ref, add = small
    m = prediction_metrics(
        _frame(pred),
        _frame(obs),
        _series(ctrl),
        perturbation_mean=_series(ref),
        additive=_frame(add),
    )
    for i in range(3):
        p, o = pred[i], obs[i]
        top = np.argsort(-np.abs(o - ctrl))[:20]
        top_r = np.argsort(-np.abs(o - ref))[:20]
        top_p = np.argsort(-np.abs(p - ctrl))[:20]
        row = m.iloc[i]
        assert row["pearson_delta"] == pytest.approx(_corr(p - ctrl, o - ctrl))
        assert row["pearson_delta_top20"] == pytest.approx(
            _corr(p[top] - ctrl[top], o[top] - ctrl[top])
        )
        assert row["pearson_delta_pert"] == pytest.approx(_corr(p - ref, o - ref))
        assert row["pearson_delta_pert_top20"] == pytest.approx(
            _corr(p[top_r] - ref[top_r], o[top_r] - ref[top_r])
        )
        assert row["mse"] == pytest.approx(np.mean((p - o) ** 2))
        assert row["mse_top20"] == pytest.approx(np.mean((p[top] - o[top]) ** 2))
        assert row["mae"] == pytest.approx(np.mean(np.abs(p - o)))
        assert row["mae_top20"] == pytest.approx(np.mean(np.abs(p[top] - o[top])))
        assert row["direction_top20"] == pytest.approx(
            np.mean(np.sign(p[top] - ctrl[top]) == np.sign(o[top] - ctrl[top]))
        )
        assert row["de_overlap_20"] == pytest.approx(len(set(top) & set(top_p)) / 20)
        assert row["de_overlap_50"] == 1.0  # 30 genes: k capped at 30, every gene on both sides
        assert row["spearman_raw"] == pytest.approx(sps.spearmanr(p, o).statistic)
        assert row["interaction_pearson"] == pytest.approx(_corr(o - add[i], p - add[i]))


def test_hand_values_one_label():
    genes = 5
    o = np.array([1.0, 3.0, 0.0, 2.0, 4.0])
    p = np.array([2.0, 2.0, 1.0, 2.0, 5.0])
    c = np.zeros(genes)
    m = prediction_metrics(_frame(p), _frame(o), _series(c), n_top=2).iloc[0]
    # by hand: errors 1, -1, 1, 0, 1
    assert m["mse"] == pytest.approx(4 / 5)
    assert m["mae"] == pytest.approx(4 / 5)
    # top-2 by |o|: genes 4 and 1, errors 1 and -1
    assert m["mse_top20"] == pytest.approx(1.0)
    assert m["pearson_delta_top20"] == pytest.approx(1.0)  # (5, 2) vs (4, 3): same order
    # Pearson of (2,2,1,2,5) and (1,3,0,2,4): computed by hand
    dp, do = p - p.mean(), o - o.mean()  # means 2.4 and 2
    r = (dp @ do) / np.sqrt((dp @ dp) * (do @ do))
    assert m["pearson_delta"] == pytest.approx(r)
    assert m["pearson_delta"] == pytest.approx(8.0 / np.sqrt(9.2 * 10.0))
    # Spearman: ranks of p (3, 3, 1, 3, 5) vs o (2, 4, 1, 3, 5)
    assert m["spearman_raw"] == pytest.approx(_corr([3, 3, 1, 3, 5], [2, 4, 1, 3, 5]))


def test_top_genes_by_control_by_reference_and_top_from():
    rng = np.random.default_rng(2)
    g = np.arange(30)
    c = np.zeros(30)
    o = np.where(g < 20, 10.0 + g, 0.1 * (g - 19))  # top-20 by |o - c|: genes 0..19
    r = np.where(g < 10, o, o - 100.0 - g)  # top-20 by |o - r|: genes 10..29
    t = np.where(g >= 10, 50.0 + g, 0.0)  # top-20 by |t - c|: genes 10..29
    p = o + rng.normal(size=30) * 3.0
    first, last = g < 20, g >= 10
    m = prediction_metrics(_frame(p), _frame(o), _series(c), perturbation_mean=_series(r)).iloc[0]
    assert m["pearson_delta_top20"] == pytest.approx(_corr(p[first], o[first]))
    assert m["mse_top20"] == pytest.approx(np.mean((p[first] - o[first]) ** 2))
    assert m["pearson_delta_pert_top20"] == pytest.approx(
        _corr(p[last] - r[last], o[last] - r[last])
    )
    assert m["pearson_delta_pert_top20"] != pytest.approx(
        _corr(p[first] - r[first], o[first] - r[first])
    )
    # top_from: the top genes come from t (by |t - c| and by |t - r|), the values from o
    mt = prediction_metrics(
        _frame(p), _frame(o), _series(c), perturbation_mean=_series(r), top_from=_frame(t)
    ).iloc[0]
    assert mt["pearson_delta_top20"] == pytest.approx(_corr(p[last], o[last]))
    assert mt["pearson_delta_top20"] != pytest.approx(m["pearson_delta_top20"])
    assert mt["mse_top20"] == pytest.approx(np.mean((p[last] - o[last]) ** 2))
    assert mt["mae_top20"] == pytest.approx(np.mean(np.abs(p[last] - o[last])))
    top_tr = np.argsort(-np.abs(t - r))[:20]
    assert mt["pearson_delta_pert_top20"] == pytest.approx(
        _corr(p[top_tr] - r[top_tr], o[top_tr] - r[top_tr])
    )
    # the all-gene metrics do not depend on top_from
    for name in ("pearson_delta", "mse", "mae", "spearman_raw", "pearson_delta_pert"):
        assert mt[name] == pytest.approx(m[name])


def test_n_top_changes_the_top_set():
    o = np.arange(30.0)
    p = o.copy()
    p[-5:] = -p[-5:]  # the 5 largest changes predicted with the wrong sign
    m5 = prediction_metrics(_frame(p), _frame(o), _series(np.zeros(30)), n_top=5).iloc[0]
    m20 = prediction_metrics(_frame(p), _frame(o), _series(np.zeros(30))).iloc[0]
    assert m5["direction_top20"] == 0.0
    assert m20["direction_top20"] == pytest.approx(15 / 20)
    big = prediction_metrics(_frame(p), _frame(o), _series(np.zeros(30)), n_top=1000).iloc[0]
    assert big["mse_top20"] == pytest.approx(big["mse"])  # capped at the number of genes
    with pytest.raises(ValueError, match="n_top"):
        prediction_metrics(_frame(p), _frame(o), _series(np.zeros(30)), n_top=0)


def test_de_overlap_known_overlap():
    g = np.arange(60)
    c = np.full(60, 2.0)
    o = c + (60.0 - g)  # top-k by |o - c|: genes 0..k-1
    p = c - np.where(g < 10, 0.1 * (g + 1), 100.0 - g)  # top-k by |p - c|: genes 10..k+9
    m = prediction_metrics(_frame(p), _frame(o), _series(c)).iloc[0]
    assert m["de_overlap_20"] == pytest.approx(10 / 20)  # genes 10..19
    assert m["de_overlap_50"] == pytest.approx(40 / 50)  # genes 10..49
    # the overlap is on |change|: a perfect prediction overlaps fully
    perfect = prediction_metrics(_frame(o), _frame(o), _series(c)).iloc[0]
    assert perfect["de_overlap_20"] == perfect["de_overlap_50"] == 1.0
    # top_from replaces the observed side: t's top genes are 10..., like p's
    mt = prediction_metrics(_frame(p), _frame(o), _series(c), top_from=_frame(p)).iloc[0]
    assert mt["de_overlap_20"] == mt["de_overlap_50"] == 1.0


def test_direction_known_signs():
    g = np.arange(30)
    c = np.ones(30)
    change = np.where(g < 20, 5.0 + g, 0.5)  # top-20 by |o - c|: genes 0..19, all up
    o = c + change
    signs = np.where(g < 15, 1.0, -1.0)  # right on genes 0..14, wrong on 15..29
    p = c + signs * 0.3
    m = prediction_metrics(_frame(p), _frame(o), _series(c)).iloc[0]
    assert m["direction_top20"] == pytest.approx(15 / 20)
    # down-regulated genes too: flip both on the top genes
    o2, p2 = c - change, c - signs * 0.3
    assert prediction_metrics(_frame(p2), _frame(o2), _series(c)).iloc[0][
        "direction_top20"
    ] == pytest.approx(15 / 20)


def test_interaction_pearson_hand_case():
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    interaction = np.array([1.0, -1.0, 0.0, 2.0, 0.0])
    o = a + interaction
    p = a + np.array([2.0, -1.0, 0.0, 1.0, 1.0])
    m = prediction_metrics(_frame(p), _frame(o), _series(np.zeros(5)), additive=_frame(a))
    # o - a = (1, -1, 0, 2, 0), mean 0.4; p - a = (2, -1, 0, 1, 1), mean 0.6
    x = np.array([0.6, -1.4, -0.4, 1.6, -0.4])
    y = np.array([1.4, -1.6, -0.6, 0.4, 0.4])
    expected = (x @ y) / np.sqrt((x @ x) * (y @ y))
    assert m.loc["l0", "interaction_pearson"] == pytest.approx(expected)
    assert m.loc["l0", "interaction_pearson"] == pytest.approx(_corr(interaction, p - a))
    # the additive prediction itself has no interaction: NaN, not a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = prediction_metrics(_frame(a), _frame(o), _series(np.zeros(5)), additive=_frame(a))
    assert np.isnan(m.loc["l0", "interaction_pearson"])


def test_constant_vectors_give_nan_without_warnings(small):
    _, obs, ctrl, _, _ = small
    control_pred = np.tile(ctrl, (3, 1))  # predicts no change
    flat = np.full((3, 30), 3.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = prediction_metrics(_frame(control_pred), _frame(obs), _series(ctrl))
        f = prediction_metrics(_frame(flat), _frame(obs), _series(ctrl))
        n = prediction_metrics(_frame(np.full((3, 30), np.nan)), _frame(obs), _series(ctrl))
    assert m["pearson_delta"].isna().all()
    assert m["pearson_delta_top20"].isna().all()
    assert m["mse"].notna().all()
    assert f["spearman_raw"].isna().all()
    assert n["pearson_delta"].isna().all()
    assert n["spearman_raw"].isna().all()
    assert n["mse"].isna().all()


def test_alignment_and_key_errors(small):
    pred, obs, ctrl, ref, add = small
    observed, control = _frame(obs), _series(ctrl)
    base = prediction_metrics(_frame(pred), observed, control)
    # extra labels / genes in predicted are ignored, order does not matter
    shuffled = _frame(np.vstack([pred, pred[:1]]), labels=["l0", "l1", "l2", "extra"])
    shuffled["extra_gene"] = 1.0
    shuffled = shuffled.iloc[::-1, ::-1]
    pd.testing.assert_frame_equal(prediction_metrics(shuffled, observed, control), base)
    with pytest.raises(KeyError, match="l2"):
        prediction_metrics(_frame(pred).drop(index="l2"), observed, control)
    with pytest.raises(KeyError, match="g7"):
        prediction_metrics(_frame(pred).drop(columns="g7"), observed, control)
    with pytest.raises(KeyError, match="g3"):
        prediction_metrics(_frame(pred), observed, control.drop("g3"))
    with pytest.raises(KeyError, match="g4"):
        prediction_metrics(
            _frame(pred), observed, control, perturbation_mean=_series(ref).drop("g4")
        )
    with pytest.raises(KeyError, match="l1"):
        prediction_metrics(_frame(pred), observed, control, additive=_frame(add).drop(index="l1"))
    with pytest.raises(KeyError, match="l0"):
        prediction_metrics(_frame(pred), observed, control, top_from=observed.drop(index="l0"))
    with pytest.raises(KeyError, match="l2"):
        rank_l1(_frame(pred).drop(index="l2"), observed)
    empty = prediction_metrics(_frame(pred), observed.iloc[:0], control)
    assert empty.empty
    assert list(empty.columns) == list(base.columns)


def test_rank_l1_hand_case():
    obs = _frame([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    pred = _frame([[1.0, 0.0], [0.0, 0.0], [6.0, 6.0]])
    # p0: distances 1 (own), 9, 11 -> 0
    # p1: 10 (own), 0 closer, 10 tie -> (1 + 0.5) / 2
    # p2: 10 (own), 12, 10 tie -> 0.5 / 2
    got = rank_l1(pred, obs)
    assert got.name == "rank_l1"
    assert list(got.index) == ["l0", "l1", "l2"]
    np.testing.assert_allclose(got.to_numpy(), [0.0, 0.75, 0.25])
    np.testing.assert_allclose(rank_l1(obs, obs).to_numpy(), 0.0)


def test_rank_l1_against_direct_loop_and_collapse():
    rng = np.random.default_rng(3)
    obs = rng.normal(size=(12, 30))
    pred = obs + rng.normal(size=(12, 30)) * 0.8
    got = rank_l1(_frame(pred), _frame(obs)).to_numpy()
    for i in range(12):
        own = np.abs(pred[i] - obs[i]).sum()
        others = [np.abs(pred[i] - obs[j]).sum() for j in range(12) if j != i]
        assert got[i] == pytest.approx(np.mean(np.array(others) < own))
    # a prediction collapsed onto one profile cannot tell the labels apart
    collapsed = np.tile(obs.mean(axis=0), (12, 1))
    rank = rank_l1(_frame(collapsed), _frame(obs))
    assert rank.mean() == pytest.approx(0.5)
    assert got.mean() < 0.3
    one = rank_l1(_frame(pred[:1]), _frame(obs[:1]))
    assert len(one) == 1
    assert np.isnan(one.iloc[0])


def test_matched_correlation_finds_the_permutation():
    rng = np.random.default_rng(0)
    a = rng.random((4, 50))
    b = np.vstack(
        [a[[2, 0, 3, 1]] * 3.0 + 1.0, rng.random((2, 50))]
    )  # permuted, rescaled, extra rows
    np.testing.assert_allclose(matched_correlation(a, b), 1.0)
    # matching is one-to-one: two copies of one row cannot both match it
    dup = np.vstack([a[0], a[0]])
    m = matched_correlation(dup, a)
    assert m.max() == pytest.approx(1.0)
    assert m.min() < 0.9


def test_matched_correlation_constant_row_and_shapes():
    a = np.vstack([np.ones(10), np.arange(10.0)])
    m = matched_correlation(a, a)
    np.testing.assert_allclose(sorted(m), [0.0, 1.0])
    with pytest.raises(ValueError, match="same number of columns"):
        matched_correlation(a, np.ones((2, 9)))
