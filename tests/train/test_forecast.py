"""Fit forecast: sane, positive, and scaling as the cost model says."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import pertspectra as ps
from pertspectra.train import format_forecast
from pertspectra.train._forecast import forecast_fit, memory_breakdown


def test_forecast_small_is_sane():
    d = forecast_fit(n_labels=30, n_genes=200, n_design=25, n_factors=10, n_edges=500)
    mem = d["memory_bytes"]
    assert mem["total"] == sum(v for k, v in mem.items() if k != "total")
    assert all(v > 0 for v in mem.values())
    assert d["seconds_per_epoch"] > 0
    assert d["timing"].startswith("measured at full size")
    assert d["block_size"] >= 1
    assert d["host_stats_bytes"] == 4 * 30 * 200 * 8
    text = format_forecast(d)
    assert "30 labels x 200 genes" in text
    assert "per epoch" in text
    assert "MiB" in text or "KiB" in text


def test_memory_linear_in_genes():
    m = [
        memory_breakdown(n_labels=200, n_genes=g, n_design=150, n_factors=50)["total"]
        for g in (4000, 8000, 16000)
    ]
    assert 1.5 < m[1] / m[0] < 2.1
    # affine in g: doubling g adds twice as much the second time (tile buffers are fixed)
    assert (m[2] - m[1]) / (m[1] - m[0]) == pytest.approx(2.0, rel=0.02)
    # float64 doubles the device memory
    m64 = memory_breakdown(n_labels=200, n_genes=4000, n_design=150, n_factors=50, dtype="float64")[
        "total"
    ]
    assert 1.9 < m64 / m[0] < 2.05
    # edges add memory linearly
    e = memory_breakdown(n_labels=200, n_genes=4000, n_design=150, n_factors=50, n_edges=100_000)[
        "edges"
    ]
    assert (
        e
        == 2
        * memory_breakdown(n_labels=200, n_genes=4000, n_design=150, n_factors=50, n_edges=50_000)[
            "edges"
        ]
    )
    assert (
        memory_breakdown(n_labels=200, n_genes=4000, n_design=150, n_factors=50, graph=False)[
            "graph_buffers"
        ]
        == 0
    )


def test_scaled_forecast_and_errors():
    d = forecast_fit(n_labels=10, n_genes=1500, n_design=8, n_factors=8, measure_budget_s=0.0)
    assert "scaled" in d["timing"]
    assert d["seconds_per_epoch"] > 0
    with pytest.raises(ValueError, match="n_genes"):
        forecast_fit(n_labels=10, n_genes=0, n_design=5, n_factors=5)
    with pytest.raises(ValueError, match="dtype"):
        forecast_fit(n_labels=10, n_genes=10, n_design=5, n_factors=5, dtype="float16")
    with pytest.raises(ValueError, match="n_edges"):
        forecast_fit(n_labels=10, n_genes=10, n_design=5, n_factors=5, n_edges=-1)


def test_forecast_uses_the_statistics_conventions():
    """The dry run builds the design with the data's separator, as fit does."""
    gen = np.random.default_rng(0)
    labels = ["ctrl"] * 60 + ["A"] * 60 + ["B"] * 60 + ["A_B"] * 60
    adata = ad.AnnData(gen.uniform(0, 2, (len(labels), 30)))
    adata.obs["p"] = pd.Categorical(labels)
    stats = ps.stats.compute_group_stats(adata, perturbation_key="p", separator="_", progress=False)
    d = ps.train.forecast(stats, n_factors=4)
    assert d["n_design"] == 4  # A, B, ctrl, basal: "A_B" is a combination, not a gene
    assert d["n_factors"] == 4
    wrong = ps.stats.compute_group_stats(adata, perturbation_key="p", progress=False)
    assert ps.train.forecast(wrong, n_factors=4)["n_design"] == 5
    with pytest.raises(TypeError, match="unknown option"):
        ps.train.forecast(stats, n_factor=4)
