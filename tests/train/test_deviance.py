"""The deviance explained: the reconstruction measured between the null and the saturated fit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import pertspectra as ps
from pertspectra._keys import LAYER_WEIGHTED_SUM, WEIGHT
from pertspectra.train._deviance import deviance_record, recon_bounds


def _cells_and_stats(weighting: str = "label"):
    adata = ps.datasets.toy(seed=0)
    stats = ps.stats.compute_group_stats(
        adata, perturbation_key="perturbation", min_cells=1, weighting=weighting, progress=False
    )
    return adata, stats


def _cell_deviance(x: np.ndarray, eta: np.ndarray, mu: np.ndarray) -> float:
    """The weighted Poisson deviance over cells, 2 sum eta (x log(x/mu) - x + mu)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(x > 0, x * np.log(x / mu), 0.0) - x + mu
    return float(2 * (eta[:, None] * term).sum())


def test_bounds_are_the_objective_at_the_group_means_and_at_the_pooled_mean():
    _, stats = _cells_and_stats()
    s = np.asarray(stats.layers[LAYER_WEIGHTED_SUM], dtype=np.float64)
    w = stats.obs[WEIGHT].to_numpy(np.float64)
    r_sat, r_null = recon_bounds(stats)
    means = s / w[:, None]
    pooled = s.sum(0) / w.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        sat = (w[:, None] * means).sum() - np.where(s > 0, s * np.log(means), 0.0).sum()
        null = (w[:, None] * pooled).sum() - np.where(s > 0, s * np.log(pooled), 0.0).sum()
    assert r_sat == pytest.approx(sat, rel=1e-12)
    assert r_null == pytest.approx(null, rel=1e-12)
    assert r_sat < r_null


@pytest.mark.parametrize("weighting", ["label", "uniform"])
def test_deviance_explained_is_the_share_of_the_between_label_cell_deviance(weighting):
    # per cell: dev(mu) - dev(saturated) over dev(null) - dev(saturated), with the cells' weights
    adata, stats = _cells_and_stats(weighting)
    labels = adata.obs["perturbation"].astype(str).to_numpy()
    order = [str(x) for x in stats.obs_names]
    row = np.array([order.index(lab) for lab in labels])
    x = np.asarray(adata.X.toarray() if hasattr(adata.X, "toarray") else adata.X, np.float64)
    n = stats.obs["n_cells"].to_numpy(np.float64)[row]
    eta = 1.0 / n if weighting == "label" else np.ones_like(n)
    means = np.asarray(stats.X, dtype=np.float64)
    rng = np.random.default_rng(0)
    mu = means * rng.uniform(0.7, 1.3, size=means.shape) + 0.01  # some model's group means
    s = np.asarray(stats.layers[LAYER_WEIGHTED_SUM], dtype=np.float64)
    w = stats.obs[WEIGHT].to_numpy(np.float64)
    recon = float((w[:, None] * mu).sum() - (s * np.log(mu)).sum())
    record = deviance_record(stats, recon, lam=1.0, checks=[])
    d_sat = _cell_deviance(x, eta, means[row])
    d_null = _cell_deviance(x, eta, np.broadcast_to(s.sum(0) / w.sum(), x.shape))
    d_mu = _cell_deviance(x, eta, mu[row])
    assert 0 < record["deviance_explained"] < 1
    assert record["deviance_explained"] == pytest.approx(
        1 - (d_mu - d_sat) / (d_null - d_sat), rel=1e-9
    )
    r_sat, r_null = recon_bounds(stats)
    assert deviance_record(stats, r_sat, lam=1.0, checks=[])["deviance_explained"] == 1.0
    assert deviance_record(stats, r_null, lam=1.0, checks=[])["deviance_explained"] == 0.0


def test_checks_in_deviance_units_and_the_degenerate_screen():
    _, stats = _cells_and_stats()
    r_sat, r_null = recon_bounds(stats)
    checks = [{"before": 10.0, "after": 9.0}]
    deviance_record(stats, r_sat, lam=2.0, checks=checks)
    assert checks[0]["improvement_deviance"] == pytest.approx(1.0 / (2.0 * (r_null - r_sat)))
    same = stats.copy()
    same.layers[LAYER_WEIGHTED_SUM] = np.ones(same.shape) * same.obs[WEIGHT].to_numpy()[:, None]
    record = deviance_record(same, 0.0, lam=1.0, checks=checks)
    assert record["deviance_explained"] is None
    assert checks[0]["improvement_deviance"] is None


def test_a_fit_records_its_deviance_explained_and_summary_line():
    _, stats = _cells_and_stats()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = ps.train.fit(stats, n_factors=4, max_epochs=300, progress=False, seed=0)
    t = model.training
    dev = t["convergence"]["deviance"]
    span = dev["null_recon"] - dev["saturated_recon"]
    assert t["deviance_explained"] == pytest.approx(
        1 - (t["final_recon"] - dev["saturated_recon"]) / span
    )
    assert 0 < t["deviance_explained"] <= 1
    for check in t["convergence"]["checks"]:
        expected = (check["before"] - check["after"]) / (model.config.lam * span)
        assert check["improvement_deviance"] == pytest.approx(expected)
    assert f"deviance explained {100 * t['deviance_explained']:.2f}%" in model.summary()
