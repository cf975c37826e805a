"""``matmul_precision``: the training steps' graph products at a lower precision, values exact."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import pertspectra as ps
from pertspectra.model import _graph_kernel
from pertspectra.model._graph import GraphPrior, graph_nll, tile_precision
from pertspectra.train import TrainConfig
from pertspectra.train._loop import run


@pytest.fixture
def seen(monkeypatch):
    """Record torch's float32 matmul precision inside each blocked pass: (with_grad, precision)."""
    calls: list[tuple[bool, str]] = []
    real = _graph_kernel._blocked

    def spy(*args):
        calls.append((bool(args[-1]), torch.get_float32_matmul_precision()))
        return real(*args)

    monkeypatch.setattr(_graph_kernel, "_blocked", spy)
    monkeypatch.setattr(ps.model._graph, "_blocked", spy)
    return calls


def _problem(seed: int = 0, g: int = 40, L: int = 6):
    gen = torch.Generator().manual_seed(seed)
    w = (torch.randn((L, g), generator=gen) * 0.5).requires_grad_()
    b = torch.randn((L, L), generator=gen).requires_grad_()
    rows = torch.arange(0, g - 1)
    prior = GraphPrior(rows, rows + 1, torch.ones(g - 1), g)
    return w, b, prior


def _loss(w, b, prior):
    B = torch.sigmoid(b)
    return graph_nll(torch.softmax(w, 0), 0.5 * (B + B.T), 0.1, rho=0.05, prior=prior)


def test_only_passes_with_gradients_change_and_the_setting_is_restored(seen):
    w, b, prior = _problem()
    assert torch.get_float32_matmul_precision() == "highest"
    with tile_precision("medium"):
        _loss(w, b, prior).backward()
        with torch.no_grad():
            _loss(w, b, prior)
        assert torch.get_float32_matmul_precision() == "highest"  # outside the pass
    _loss(w, b, prior).backward()
    assert seen == [(True, "medium"), (False, "highest"), (True, "highest")]
    assert torch.get_float32_matmul_precision() == "highest"


def test_restored_when_the_pass_raises(monkeypatch):
    def boom(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(_graph_kernel, "_blocked", boom)
    w, b, prior = _problem()
    with tile_precision("medium"), pytest.raises(RuntimeError, match="boom"):
        _loss(w, b, prior)
    assert torch.get_float32_matmul_precision() == "highest"


def test_none_follows_the_caller_and_bad_values_are_refused(seen):
    w, b, prior = _problem()
    torch.set_float32_matmul_precision("medium")
    try:
        with tile_precision(None):
            _loss(w, b, prior).backward()
    finally:
        torch.set_float32_matmul_precision("highest")
    assert seen == [(True, "medium")]
    with pytest.raises(ValueError, match="matmul_precision must be one of"), tile_precision("low"):
        pass


def test_value_and_gradients_close_to_exact():
    """bfloat16 products (where the CPU has them) change the gradients by about 1e-3 at most."""
    w, b, prior = _problem(g=300, L=24)
    exact = _loss(w, b, prior)
    exact.backward()
    gw, gb = w.grad.clone(), b.grad.clone()
    w.grad = b.grad = None
    with tile_precision("medium"):
        approx = _loss(w, b, prior)
    approx.backward()
    assert float(approx.detach()) == pytest.approx(float(exact.detach()), rel=1e-3)
    for got, want in ((w.grad, gw), (b.grad, gb)):
        assert float((got - want).norm() / want.norm()) < 1e-2


def test_run_steps_at_the_precision_and_judges_on_exact_values(seen):
    w, b, prior = _problem()
    config = TrainConfig(cycle_epochs=40, max_epochs=100, matmul_precision="medium").resolved(
        "paper"
    )
    hist = run([w, b], lambda: _loss(w, b, prior), config, progress=False)
    steps = [p for grad, p in seen if grad]
    values = [p for grad, p in seen if not grad]
    assert len(steps) == hist.epochs
    assert set(steps) == {"medium"}
    assert set(values) == {"highest"}  # the end of the schedule and of each check
    assert len(values) == 1 + len(hist.checks)
    # the parameters returned are the best of the values judged, computed exactly
    judged = [hist.checks[0]["before"]] + [c["after"] for c in hist.checks]
    with torch.no_grad():
        assert float(_loss(w, b, prior)) == pytest.approx(min(judged), rel=1e-12)
    assert torch.get_float32_matmul_precision() == "highest"


def test_config_validates_and_round_trips():
    assert TrainConfig().matmul_precision is None
    for bad, match in (
        ({"matmul_precision": "low"}, "matmul_precision must be one of"),
        ({"matmul_precision": "medium", "dtype": "float64"}, "needs dtype='float32'"),
        ({"matmul_precision": "high", "schedule": "stepped"}, "schedule='cosine'"),
    ):
        with pytest.raises(ValueError, match=match):
            TrainConfig(**bad)
    TrainConfig(matmul_precision="highest", dtype="float64", schedule="stepped")  # exact: fine
    cfg = TrainConfig(matmul_precision="medium")
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_fit_records_it_and_ends_near_the_exact_fit(toy_stats):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        exact = ps.train.fit(toy_stats, seed=0, progress=False, max_epochs=1500)
        fast = ps.train.fit(
            toy_stats, seed=0, progress=False, max_epochs=1500, matmul_precision="medium"
        )
    assert fast.training["matmul_precision"] == "medium"
    assert exact.training["matmul_precision"] is None
    a, b = exact.training["final_loss"], fast.training["final_loss"]
    assert abs(a - b) / abs(a) < 1e-3
    labels = list(toy_stats.obs_names)
    np.testing.assert_allclose(fast.predict(labels), exact.predict(labels), atol=0.05)
