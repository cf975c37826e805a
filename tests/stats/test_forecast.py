"""Fit forecast: sane, positive, and scaling as the cost model says."""

from __future__ import annotations

import pytest

from pertspectra.stats._forecast import forecast_fit, format_forecast, memory_breakdown, time_epochs


def test_forecast_small_is_sane():
    d = forecast_fit(30, 200, 25, 10, n_edges=500)
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
    m = [memory_breakdown(200, g, 150, 50)["total"] for g in (4000, 8000, 16000)]
    assert 1.5 < m[1] / m[0] < 2.1
    # affine in g: doubling g adds twice as much the second time (tile buffers are fixed)
    assert (m[2] - m[1]) / (m[1] - m[0]) == pytest.approx(2.0, rel=0.02)
    # float64 doubles the device memory
    m64 = memory_breakdown(200, 4000, 150, 50, dtype="float64")["total"]
    assert 1.9 < m64 / m[0] < 2.05
    # edges add memory linearly
    e = memory_breakdown(200, 4000, 150, 50, n_edges=100_000)["edges"]
    assert e == 2 * memory_breakdown(200, 4000, 150, 50, n_edges=50_000)["edges"]
    assert memory_breakdown(200, 4000, 150, 50, graph=False)["graph_buffers"] == 0


@pytest.fixture
def one_thread():
    """One torch thread: timings are not at the mercy of other jobs on a shared CPU."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.usefixtures("one_thread")
def test_time_grows_with_genes():
    small = min(time_epochs(20, 200, 10, 16) for _ in range(2))
    large = min(time_epochs(20, 3200, 10, 16) for _ in range(2))
    assert large > 2 * small


def test_scaled_forecast_and_errors():
    d = forecast_fit(10, 1500, 8, 8, measure_budget_s=0.0)
    assert "scaled" in d["timing"]
    assert d["seconds_per_epoch"] > 0
    with pytest.raises(ValueError, match="n_genes"):
        forecast_fit(10, 0, 5, 5)
    with pytest.raises(ValueError, match="dtype"):
        forecast_fit(10, 10, 5, 5, dtype="float16")
    with pytest.raises(ValueError, match="n_edges"):
        forecast_fit(10, 10, 5, 5, n_edges=-1)
