"""Numerically robust training: degenerate data and extreme settings end finite or in one message.

Each case fits a small hand-made screen (12 genes, ``ctrl``, ``A``, ``B``, ``A+B``) for a few
epochs under both parametrizations and checks that the parameters, the objective, its history
and the predictions are finite; where no sensible answer exists (a huge learning rate or weight
decay) the fit must stop with an error naming the setting to change.
"""

from __future__ import annotations

import warnings
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

import pertspectra as ps
from pertspectra.model import GraphPrior, ModelConfig, graph_nll, graph_nll_dense
from pertspectra.model import _graph_kernel as kernel
from pertspectra.model._loss import poisson_recon
from pertspectra.train import TrainConfig

N_GENES = 12
LABELS = ["ctrl"] * 10 + ["A"] * 10 + ["B"] * 10 + ["A+B"] * 10
PARAMETRIZATIONS = ["effects", "paper"]


def _expression(scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.gamma(2.0, 0.5, size=(len(LABELS), N_GENES)) * scale


def _adata(x: np.ndarray, labels: list[str] = LABELS, genes: list[str] | None = None) -> ad.AnnData:
    genes = genes or [f"g{j}" for j in range(x.shape[1])]
    obs = pd.DataFrame(
        {"perturbation": pd.Categorical(labels)}, index=[f"c{i}" for i in range(len(labels))]
    )
    return ad.AnnData(X=np.asarray(x, dtype=np.float64), obs=obs, var=pd.DataFrame(index=genes))


def _stats(adata: ad.AnnData, **kwargs: Any) -> ad.AnnData:
    return ps.stats.compute_group_stats(
        adata, perturbation_key="perturbation", min_cells=1, progress=False, **kwargs
    )


def _prior(kind: str) -> sp.csr_matrix:
    """``"none"``: no edges; ``"edges"``: 30% of the pairs, weights in [0.2, 1]."""
    if kind == "none":
        return sp.csr_matrix((N_GENES, N_GENES))
    rng = np.random.default_rng(1)
    a = np.triu((rng.random((N_GENES, N_GENES)) < 0.3) * rng.uniform(0.2, 1.0, (N_GENES,) * 2), 1)
    return sp.csr_matrix(a + a.T)


def _fit(stats: ad.AnnData, parametrization: str, **kwargs: Any) -> ps.model.FittedModel:
    options = {"n_factors": 3, "max_epochs": 60, "cycle_epochs": 40, "threads": 1, **kwargs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "did not converge": a few epochs only
        return ps.train.fit(
            stats,
            parametrization=parametrization,
            progress=False,
            seed=0,
            store=False,
            **options,
        )


def _assert_finite(model: ps.model.FittedModel) -> None:
    for name in ("P", "W", "B", "kappa", "gene_scale"):
        value = np.asarray(getattr(model, name))
        assert np.isfinite(value).all(), name
    training = model.training
    assert np.isfinite(training["final_loss"])
    assert np.isfinite(training["loss_history"]).all()
    labels = [*model.labels, "ctrl"]
    predicted = ps.predict.predict(model, labels).to_numpy()
    assert np.isfinite(predicted).all()
    assert (predicted > 0).all()


@pytest.fixture(scope="module")
def stats() -> ad.AnnData:
    return _stats(_adata(_expression()))


# ------------------------------------------------------------------------------------------------
# degenerate data
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
def test_all_zero_genes(parametrization):
    x = _expression()
    x[:, :3] = 0.0
    model = _fit(_stats(_adata(x)), parametrization)
    _assert_finite(model)


@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
def test_gene_expressed_in_one_label_only(parametrization):
    x = _expression()
    x[:, 4] = 0.0
    x[10:20, 4] = 5.0  # the A cells only
    model = _fit(_stats(_adata(x)), parametrization)
    _assert_finite(model)


@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
@pytest.mark.parametrize("scale", [1e6, 1e12])
def test_very_large_values(parametrization, scale):
    stats = _stats(_adata(_expression(scale)), allow_counts=True)
    model = _fit(stats, parametrization)
    _assert_finite(model)


def test_values_beyond_float32_are_refused_before_fitting():
    stats = _stats(_adata(_expression(1e39)), allow_counts=True)
    with pytest.raises(ValueError, match=r"exceed the float32 range.*dtype='float64'"):
        _fit(stats, "effects")
    _assert_finite(_fit(stats, "effects", dtype="float64", max_epochs=10))


@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
def test_single_perturbation_label(parametrization):
    labels = ["ctrl"] * 20 + ["A"] * 20
    model = _fit(_stats(_adata(_expression(), labels)), parametrization)
    assert sorted(model.labels) == ["A", "ctrl"]
    _assert_finite(model)


@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
def test_prior_without_edges(stats, parametrization):
    with_prior = stats.copy()
    with_prior.varp["pertspectra_prior"] = _prior("none")
    model = _fit(with_prior, parametrization)
    _assert_finite(model)
    # an edgeless prior is the all-zero adjacency: the same fit as no prior at all
    np.testing.assert_array_equal(model.W, _fit(stats, parametrization).W)


@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
def test_knocked_out_target_with_on_target_term(parametrization):
    """A perturbation whose measured target is zero in its cells (t -> -inf under "effects")."""
    genes = ["A", "B"] + [f"g{j}" for j in range(2, N_GENES)]
    x = _expression()
    x[[i for i, lab in enumerate(LABELS) if "A" in lab], 0] = 0.0
    model = _fit(_stats(_adata(x, genes=genes)), parametrization, learning_rates=(1.0, 1e-4))
    _assert_finite(model)


# ------------------------------------------------------------------------------------------------
# extreme settings
# ------------------------------------------------------------------------------------------------

EXTREMES = [
    {"lam": 1e-8},
    {"lam": 1e8},
    {"rho": 1e-6},
    {"rho": 1 - 1e-6},
    {"rho": 1 - 1e-8},  # 1 - rho below float32's resolution of 1: p = 1 - q would be 0
    {"rho": 1e-15},
    {"kappa": 1e-9},
    {"kappa": 1 - 1e-9},
    {"weight_decay": 0.0},
    {"delta": 0.0},
    {"floor": 1e-30},
    {"learning_rates": (1e-12, 1e-14)},
    {"lam": 1e-8, "rho": 1e-12},  # the graph term dominates
]


@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
@pytest.mark.parametrize("prior", ["none", "edges"])
@pytest.mark.parametrize(
    "setting", EXTREMES, ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items())
)
def test_extreme_settings_end_finite(stats, parametrization, prior, setting):
    with_prior = stats.copy()
    with_prior.varp["pertspectra_prior"] = _prior(prior)
    model = _fit(with_prior, parametrization, **setting)
    _assert_finite(model)


@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
def test_huge_learning_rate_stops_naming_it(stats, parametrization):
    with pytest.raises(
        FloatingPointError, match=r"diverged.*lower the first learning rate \(learning_rates\)"
    ):
        _fit(stats, parametrization, learning_rates=(1e6, 1e-4), weight_decay=0.0)
    # with the paper's weight decay (0.001) the rate is refused before fitting
    with pytest.raises(ValueError, match=r"weight_decay=0.001 times the learning rate 1e\+06"):
        _fit(stats, "paper", learning_rates=(1e6, 1e-4))


def test_overflowing_objective_names_lam(stats):
    with pytest.raises(FloatingPointError, match=r"diverged.*at epoch 1.*lower lam"):
        _fit(stats, "effects", lam=1e38)


@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
def test_huge_weight_decay_is_refused_before_fitting(stats, parametrization):
    with pytest.raises(
        ValueError, match=r"weight_decay=1e\+06 times the learning rate .* lower weight_decay"
    ):
        _fit(stats, parametrization, weight_decay=1e6)


def test_non_finite_end_state_is_an_error():
    from pertspectra.model._loss import LossTerms
    from pertspectra.train._checks import check_finite_end

    module = torch.nn.Linear(2, 2)
    finite = LossTerms(total=torch.tensor(1.0), recon=torch.tensor(1.0), graph=torch.tensor(0.0))
    check_finite_end(module, finite)
    with torch.no_grad():
        module.weight[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match=r"parameters weight became.*learning_rates"):
        check_finite_end(module, finite)


# ------------------------------------------------------------------------------------------------
# bad values refused by the configs, naming the option
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("rho", 0.0),
        ("rho", 1.0),
        ("rho", float("nan")),
        ("kappa", 1.5),
        ("lam", -1.0),
        ("lam", 0.0),
        ("lam", float("inf")),
        ("n_factors", 0),
        ("delta", -0.1),
        ("weight_decay", -1.0),
        ("floor", 0.0),
        ("parametrization", "other"),
    ],
)
def test_model_config_refuses_bad_values(option, value):
    with pytest.raises(ValueError, match=rf"^{option} must"):
        ModelConfig(**{option: value})


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("max_epochs", 0),
        ("cycle_epochs", 1),
        ("n_init", 0),
        ("patience", 0),
        ("threads", 0),
        ("tol", -1.0),
        ("converged_tol", float("nan")),
        ("betas", (0.9, 1.0)),
        ("learning_rates", (0.0, 1e-4)),
        ("learning_rates", (float("inf"), 1e-4)),
        ("learning_rates", (float("nan"), 1e-4)),
        ("dtype", "float16"),
    ],
)
def test_train_config_refuses_bad_values(option, value):
    with pytest.raises(ValueError, match=rf"^{option} "):
        TrainConfig(**{option: value})


def test_bad_values_are_refused_by_fit_before_fitting(stats):
    with pytest.raises(ValueError, match="rho must lie in"):
        ps.train.fit(stats, rho=2.0, progress=False)
    with pytest.raises(ValueError, match="learning_rates must be"):
        ps.train.fit(stats, learning_rates=(float("inf"), 1e-4), progress=False)


# ------------------------------------------------------------------------------------------------
# the loss's safeguards: effective where needed, inactive on ordinary inputs
# ------------------------------------------------------------------------------------------------


def test_poisson_gradient_is_finite_where_a_mean_underflows_on_a_zero():
    mu = torch.tensor([[0.0, 2.0], [1e-30, 0.5]], requires_grad=True)
    s = torch.tensor([[0.0, 1.0], [0.0, 3.0]])
    w = torch.tensor([1.0, 2.0])
    value = poisson_recon(mu, s, w)
    value.backward()
    assert mu.grad is not None
    assert torch.isfinite(mu.grad).all()
    expected = torch.tensor([[1.0, 1.0 - 1.0 / 2.0], [2.0, 2.0 - 3.0 / 0.5]])
    torch.testing.assert_close(mu.grad, expected)


def test_poisson_recon_unchanged_on_ordinary_inputs():
    gen = torch.Generator().manual_seed(0)
    mu = (torch.rand((7, 11), generator=gen) + 0.01).requires_grad_()
    s = torch.rand((7, 11), generator=gen) * (torch.rand((7, 11), generator=gen) < 0.6)
    w = torch.rand(7, generator=gen)
    got = poisson_recon(mu, s, w)
    (grad,) = torch.autograd.grad(got, mu)
    ref = (w[:, None] * mu).sum() - torch.xlogy(s, mu).sum()  # the plain formula
    (ref_grad,) = torch.autograd.grad(ref, mu)
    assert torch.equal(got, ref)
    assert torch.equal(grad, ref_grad)


def _graph_inputs(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, GraphPrior]:
    gen = torch.Generator().manual_seed(0)
    g, n_factors = 40, 5
    W = torch.softmax(torch.randn((n_factors, g), generator=gen, dtype=dtype) * 2, 0)
    b = torch.sigmoid(torch.randn((n_factors, n_factors), generator=gen, dtype=dtype))
    a = sp.random(g, g, density=0.2, random_state=0)
    a = sp.triu(a, 1)
    a = (a + a.T).tocsr()
    a.data = np.clip(a.data, 0.1, 1.0)
    return W, 0.5 * (b + b.T), GraphPrior.from_scipy(a, dtype=dtype)


#: (block, col_block) of ``kernel._blocked`` for g = 40: upper-triangle tiles, or one square
TILINGS = [pytest.param((16, 32), id="tiles"), pytest.param((64, 64), id="square")]


@pytest.mark.parametrize("square", [False, True], ids=["tiles", "square"])
@pytest.mark.parametrize(("rho", "kappa"), [(1 - 1e-8, 0.3), (0.05, 1e-9), (1e-12, 0.5)])
def test_graph_term_accurate_in_float32_at_extremes(rho, kappa, square, monkeypatch):
    """Where ``p`` is tiny, ``1 - q`` in float32 is 0 (infinite loss); p is computed directly."""
    if not square:
        monkeypatch.setattr(kernel, "SQUARE_MAX_GENES", 0)
    W, B, prior = _graph_inputs(torch.float32)
    assert kernel.uses_square(W.shape[1], 16, 16 * 16) == square
    w32 = W.clone().requires_grad_()
    got = graph_nll(w32, B, kappa, rho=rho, prior=prior, block_size=16)
    got.backward()
    w64 = W.double().requires_grad_()
    ref = graph_nll_dense(w64, B.double(), kappa, rho=rho, prior=prior.to(dtype=torch.float64))
    ref.backward()
    assert w32.grad is not None
    assert w64.grad is not None
    assert abs(float(got.detach()) - float(ref.detach())) <= 1e-6 * abs(float(ref.detach()))
    torch.testing.assert_close(
        w32.grad.double(), w64.grad, rtol=1e-4, atol=1e-6 * float(w64.grad.abs().max())
    )


def test_graph_term_finite_where_rounding_crosses_q_lower_bound():
    """One-hot W and B = 1 (sigmoid saturated in float32): q = rho exactly, never <= 0."""
    g, rho = 6, 1e-12
    W = torch.zeros((2, g))
    W[0] = 1.0
    B = torch.tensor([[1.0, 0.5], [0.5, 0.5]])
    full = sp.csr_matrix(np.ones((g, g)) - np.eye(g))
    for prior in (None, GraphPrior.from_scipy(full)):
        got = graph_nll(W, B, 0.5, rho=rho, prior=prior)
        dense = None if prior is None else prior.to(dtype=torch.float64)
        ref = graph_nll_dense(W.double(), B.double(), 0.5, rho=rho, prior=dense)
        assert torch.isfinite(got)
        assert abs(float(got) - float(ref)) <= 1e-6 * abs(float(ref)) + 1e-4


@pytest.mark.parametrize("tiling", TILINGS)
def test_q_clamp_inactive_on_ordinary_inputs(tiling, monkeypatch):
    W, B, prior = _graph_inputs(torch.float32)
    kappa = torch.tensor(0.3)
    with_clamp = kernel._blocked(W, B, kappa, 1e-6, prior, *tiling, True)  # rho small: clamp on
    monkeypatch.setattr(kernel, "_Q_CLAMP_EPS", 0)
    without = kernel._blocked(W, B, kappa, 1e-6, prior, *tiling, True)
    for a, b in zip(with_clamp, without, strict=True):
        assert a is not None
        assert b is not None
        assert torch.equal(a, b)


@pytest.mark.parametrize("tiling", TILINGS)
def test_p_recomputation_inactive_on_ordinary_inputs(tiling, monkeypatch):
    W, B, prior = _graph_inputs(torch.float32)
    kappa = torch.tensor(0.3)
    default = kernel._blocked(W, B, kappa, 0.05, prior, *tiling, True)
    monkeypatch.setattr(kernel, "_P_REFINE_EPS", 0)  # p = 1 - q everywhere (the plain formula)
    plain = kernel._blocked(W, B, kappa, 0.05, prior, *tiling, True)
    for a, b in zip(default, plain, strict=True):
        assert a is not None
        assert b is not None
        assert torch.equal(a, b)
    # ... and needed at the extremes: without it p = 1 - q is 0 and the loss infinite
    assert not torch.isfinite(kernel._blocked(W, B, kappa, 1 - 1e-8, prior, *tiling, False)[0])
