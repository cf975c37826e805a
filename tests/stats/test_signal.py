"""The signal rank: directions of the labels' changes above their sampling noise."""

from __future__ import annotations

import math

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import pertspectra as ps
from pertspectra.cli._options import parse_n_factors
from pertspectra.model import ModelConfig, signal_n_factors
from pertspectra.stats._signal import gavish_donoho_lambda


def _screen(rank: int, *, n_labels: int = 12, n_genes: int = 120, cells: int = 150, seed: int = 0):
    """Log-expression-like values: ``rank`` gene programs moved by random label loadings."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(2.0, 4.0, n_genes)
    effects = np.zeros((n_labels, n_genes))
    for _ in range(rank):
        program = rng.normal(0.0, 1.0, n_genes) * (rng.random(n_genes) < 0.3)
        effects += rng.normal(0.0, 0.3, n_labels)[:, None] * program[None, :]
    labels = ["ctrl"] * (3 * cells) + [f"P{i}" for i in range(n_labels) for _ in range(cells)]
    mean = np.vstack([np.tile(base, (3 * cells, 1)), np.repeat(base + effects, cells, axis=0)])
    x = np.maximum(mean + rng.normal(0.0, 0.5, mean.shape), 0.0).astype(np.float32)
    cells_ad = ad.AnnData(x, obs=pd.DataFrame({"perturbation": labels}))
    cells_ad.obs_names = [f"c{i}" for i in range(cells_ad.n_obs)]
    cells_ad.var_names = [f"G{j}" for j in range(n_genes)]
    return ps.stats.compute_group_stats(cells_ad, perturbation_key="perturbation", progress=False)


@pytest.mark.parametrize("rank", [0, 1, 3])
def test_signal_rank_finds_planted_programs(rank):
    assert ps.stats.signal_rank(_screen(rank)) == rank


def test_standardized_changes_are_unit_noise_without_effects():
    z = ps.stats.standardized_changes(_screen(0, n_genes=300))
    assert z.shape == (12, 300)
    assert abs(float(z.std()) - 1.0) < 0.05
    assert abs(float(z.mean())) < 0.05


def test_gavish_donoho_threshold():
    assert gavish_donoho_lambda(1.0) == pytest.approx(4 / math.sqrt(3))
    assert gavish_donoho_lambda(1e-9) == pytest.approx(math.sqrt(2), rel=1e-6)
    with pytest.raises(ValueError, match="beta must lie in"):
        gavish_donoho_lambda(1.5)


def test_signal_rank_needs_cell_level_statistics():
    stats = _screen(1)
    means = ad.AnnData(
        np.asarray(stats.X),
        obs=pd.DataFrame({"label": list(stats.obs_names)}, index=stats.obs_names),
    )
    means.var_names = stats.var_names
    bulk = ps.stats.from_pseudobulk(means, perturbation_key="label")
    with pytest.raises(ValueError, match="per-cell variances"):
        ps.stats.signal_rank(bulk)
    with pytest.raises(ValueError, match="control label 'none'"):
        ps.stats.signal_rank(stats, control="none")


@pytest.mark.parametrize(
    ("rank", "n_genes", "expected"),
    [(0, 100, 2), (1, 100, 2), (5, 100, 6), (10, 12, 6), (400, 5000, 200)],
)
def test_signal_n_factors(rank, n_genes, expected):
    assert signal_n_factors(rank, n_genes) == expected


def test_fit_resolves_signal_factors():
    stats = _screen(2, n_labels=8, n_genes=60, cells=80)
    model = ps.train.fit(stats, n_factors="signal", max_epochs=20, progress=False)
    assert model.config.n_factors == signal_n_factors(ps.stats.signal_rank(stats), 60) == 3
    with pytest.raises(ValueError, match="n_factors must be an integer, None or 'signal'"):
        ModelConfig(n_factors="rank")


def test_cli_n_factors():
    assert parse_n_factors(None) is None
    assert parse_n_factors("signal") == "signal"
    assert parse_n_factors("12") == 12
    with pytest.raises(ValueError, match="integer or 'signal'"):
        parse_n_factors("many")
    with pytest.raises(ValueError, match=">= 1"):
        parse_n_factors("0")
