"""Exactness: the loss over group statistics equals an independent per-cell loss."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from pertspectra.design import build_design
from pertspectra.model import GraphPrior, ModelConfig, PertSpectraModule, pertspectra_loss
from pertspectra.stats import compute_group_stats


def _random_screen(rng: np.random.Generator, n_genes: int = 23):
    labels = ["ctrl", "A", "B", "C", "D", "A+B", "ctrl+C", "B+D", "C+A"]
    sizes = rng.integers(3, 12, len(labels))
    cell_labels = np.repeat(labels, sizes)
    rng.shuffle(cell_labels)
    x = rng.gamma(1.0, 1.0, (cell_labels.size, n_genes)) * (
        rng.random((cell_labels.size, n_genes)) < 0.6
    )
    adata = ad.AnnData(
        X=sp.csr_matrix(x),
        obs=pd.DataFrame({"pert": cell_labels}, index=[f"c{i}" for i in range(len(x))]),
    )
    adata.var_names = [f"g{j}" for j in range(n_genes)]
    scores = sp.random(n_genes, n_genes, density=0.2, random_state=int(rng.integers(1 << 30)))
    scores = sp.triu(scores, k=1)
    scores = (scores + scores.T).tocsr()
    scores.data = np.clip(scores.data, 0.05, 1.0)
    return adata, cell_labels, scores


def _per_cell_loss(module, x, cell_rows, eta, adjacency, lam, rho, delta, on_target=None):
    """Written from the paper's formula: per cell, then dense graph over ordered pairs.

    Under ``"effects"``: perturbation rows signed, ``ctrl`` zero, ``basal`` positive, the mean
    clamped at the floor and each perturbation ``k`` with a target gene ``on_target[k]``
    multiplying that gene's mean by ``exp(t_k)`` (``t`` in the order of the targeted columns).
    """
    cfg = module.config
    if cfg.parametrization == "paper":
        P = torch.exp(module.p_free)
    else:
        P = torch.cat(
            [module.p_free[:-2], torch.zeros_like(module.p_free[-2:-1]),
             torch.exp(module.p_free[-1:])]
        )  # fmt: skip
    W = torch.softmax(module.w_free, dim=0)
    b = torch.sigmoid(module.b_free)
    B = (b + b.T) / 2
    nu = torch.sigmoid(module.gene_scale_free)
    kappa = torch.sigmoid(module.kappa_free)
    recon = torch.zeros((), dtype=torch.float64)
    for i in range(x.shape[0]):
        hpw = cell_rows[i] @ P @ W
        if cfg.parametrization == "effects":
            hpw = torch.clamp(hpw, min=cfg.floor)
            factor = torch.ones_like(hpw)
            targeted = [k for k, j in enumerate(on_target or []) if j >= 0]
            for t, k in zip(module.t_free, targeted, strict=True):
                onehot = torch.zeros_like(hpw)
                onehot[on_target[k]] = 1.0
                factor = factor * (1 + onehot * (torch.exp(cell_rows[i][k] * t) - 1))
            hpw = hpw * factor
        mu = (nu + delta) * hpw
        recon = recon + eta[i] * (mu - x[i] * torch.log(mu)).sum()
    M = W.T @ B @ W
    g = M.shape[0]
    off = ~torch.eye(g, dtype=torch.bool)
    A = adjacency
    edge = A * A * torch.log((1 - kappa) * (1 - rho) * M + (1 - rho) * kappa)
    nonedge = (1 - A) * torch.log((1 - kappa) * (1 - rho) * (1 - M) + rho)
    graph = -(edge + nonedge)[off].sum()
    return lam * recon + graph


@pytest.mark.parametrize("with_prior", [True, False])
@pytest.mark.parametrize("weighting", ["label", "uniform"])
@pytest.mark.parametrize("param", ["paper", "effects"])
def test_group_loss_equals_per_cell_loss(with_prior, weighting, param):
    rng = np.random.default_rng(7)
    adata, cell_labels, scores = _random_screen(rng)
    stats = compute_group_stats(
        adata,
        perturbation_key="pert",
        min_cells=1,
        weighting=weighting,
        allow_counts=True,
        chunk_size=17,
        progress=False,
    )
    labels = list(stats.obs_names)
    design = build_design(labels)
    cfg = ModelConfig(n_factors=5, lam=0.7, rho=0.05, delta=0.001, parametrization=param)
    on_target = [0, 1] + [-1] * (len(design.columns) - 2) if param == "effects" else None
    module = PertSpectraModule(
        len(design.columns),
        adata.n_vars,
        cfg,
        generator=torch.Generator().manual_seed(3),
        dtype=torch.float64,
        on_target_gene=on_target,  # effects: two on-target terms
    )
    with torch.no_grad():  # move away from the symmetric init so every parameter matters
        for p in module.parameters():
            p.add_(
                torch.randn(p.shape, generator=torch.Generator().manual_seed(5), dtype=p.dtype)
                * 0.3
            )
    prior = GraphPrior.from_scipy(scores, dtype=torch.float64, device="cpu") if with_prior else None
    h = torch.as_tensor(design.matrix(labels), dtype=torch.float64)
    s = torch.as_tensor(stats.layers["weighted_sum"], dtype=torch.float64)
    w = torch.as_tensor(stats.obs["weight"].to_numpy(), dtype=torch.float64)
    got = pertspectra_loss(module, h, weighted_sum=s, weight=w, prior=prior).total
    got_grads = torch.autograd.grad(got, list(module.parameters()))

    x = torch.as_tensor(adata.X.toarray(), dtype=torch.float64)
    counts = pd.Series(cell_labels).map(lambda lab: lab).value_counts()
    canon = [design.parser.canonical(lab) for lab in cell_labels]
    canon_counts = pd.Series(canon).value_counts()
    eta = torch.as_tensor(
        [1.0 / canon_counts[c] if weighting == "label" else 1.0 for c in canon], dtype=torch.float64
    )
    rows = torch.as_tensor(np.vstack([design.row(lab) for lab in cell_labels]), dtype=torch.float64)
    assert counts.sum() == x.shape[0]
    adjacency = torch.as_tensor(scores.toarray() if with_prior else np.zeros((adata.n_vars,) * 2))
    want = _per_cell_loss(
        module, x, rows, eta, adjacency, cfg.lam, cfg.rho, cfg.delta, on_target=on_target
    )
    want_grads = torch.autograd.grad(want, list(module.parameters()))

    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-10)
    for (name, _), g1, g2 in zip(module.named_parameters(), got_grads, want_grads, strict=True):
        atol = 1e-12 * float(g2.norm())
        np.testing.assert_allclose(g1.numpy(), g2.numpy(), rtol=1e-10, atol=atol, err_msg=name)


def test_graph_term_can_be_dropped():
    cfg = ModelConfig(n_factors=3, graph=False)
    module = PertSpectraModule(
        4, 6, cfg, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    h = torch.tensor([[0, 0, 1.0, 1.0], [1.0, 0, 0, 1.0]], dtype=torch.float64)
    s = torch.rand(2, 6, dtype=torch.float64)
    terms = pertspectra_loss(
        module, h, weighted_sum=s, weight=torch.ones(2, dtype=torch.float64), prior=None
    )
    assert terms.graph.item() == 0.0
    assert terms.total.item() == pytest.approx(terms.recon.item())
