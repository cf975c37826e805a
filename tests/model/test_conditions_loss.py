"""Exactness under several conditions: the loss over (label, condition) statistics equals an
independent per-cell loss written from the authors' cell-type model, in value and gradient."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from pertspectra.design import build_design
from pertspectra.model import ConditionModule, GraphPrior, ModelConfig, pertspectra_loss
from pertspectra.stats import compute_group_stats

LABELS = ["ctrl", "A", "B", "C", "A+B", "ctrl+C", "C+A"]


def _screen(rng: np.random.Generator, n_conditions: int, n_genes: int = 17, *, drop: bool = False):
    conds = [f"cond{k}" for k in range(n_conditions)]
    cells = [(lab, c) for c in conds for lab in LABELS for _ in range(int(rng.integers(2, 9)))]
    if drop:  # "A+B" never in cond1, "C" never in cond0
        gone = {("A+B", "cond1"), ("C", "cond0"), ("ctrl+C", "cond0")}
        cells = [x for x in cells if x not in gone]
    cells = [cells[i] for i in rng.permutation(len(cells))]
    x = rng.gamma(1.0, 1.0, (len(cells), n_genes)) * (rng.random((len(cells), n_genes)) < 0.6)
    obs = pd.DataFrame(
        {"pert": [c[0] for c in cells], "cell_line": [c[1] for c in cells]},
        index=[f"c{i}" for i in range(len(cells))],
    )
    if drop:  # categories in another order than sorted
        obs["cell_line"] = pd.Categorical(obs["cell_line"], categories=conds[::-1])
    adata = ad.AnnData(X=sp.csr_matrix(x), obs=obs)
    adata.var_names = ["A", "B"] + [f"g{j}" for j in range(n_genes - 2)]
    scores = sp.triu(sp.random(n_genes, n_genes, density=0.25, random_state=3), k=1)
    scores = (scores + scores.T).tocsr()
    scores.data = np.clip(scores.data, 0.05, 1.0)
    return adata, scores


def _per_cell_loss(module, adata, design, conds, adjacency, *, on_target):
    """The authors' form, per cell: ``(h P_c)[(nu_0+delta) W_0 ; (nu_c+delta) W_c]``."""
    cfg = module.config
    x = torch.as_tensor(adata.X.toarray(), dtype=torch.float64)
    labels = [design.parser.canonical(lab) for lab in adata.obs["pert"]]
    cell_cond = [conds.index(c) for c in adata.obs["cell_line"]]
    pairs = pd.Series(list(zip(labels, cell_cond, strict=True)))
    size = pairs.map(pairs.value_counts())
    L0 = module.w_free.shape[0]
    W0 = torch.softmax(module.w_free, dim=0)
    nu0 = torch.sigmoid(module.gene_scale_free)
    kappa = torch.sigmoid(module.kappa_free)
    recon = torch.zeros((), dtype=torch.float64)
    targeted = [k for k, j in enumerate(on_target) if j >= 0] if cfg.on_target else []
    for i in range(x.shape[0]):
        c = cell_cond[i]
        P = torch.exp(module.p_free[c])
        if cfg.parametrization == "effects":
            P = torch.cat(
                [module.p_free[c, :-2], torch.zeros_like(module.p_free[c, -2:-1]),
                 torch.exp(module.p_free[c, -1:])]
            )  # fmt: skip
        h = torch.as_tensor(design.row(labels[i]), dtype=torch.float64)
        hp = h @ P
        mu = hp[:L0] @ ((nu0 + cfg.delta) * W0)
        scale = nu0 + cfg.delta
        if module.n_own:
            Wc = torch.softmax(module.w_own_free[c], dim=0)
            nuc = torch.sigmoid(module.gene_scale_own_free[c])
            mu = mu + hp[L0:] @ ((nuc + cfg.delta) * Wc)
            scale = scale + nuc + cfg.delta
        if cfg.parametrization == "effects":
            mu = torch.maximum(mu, cfg.floor * scale)
        for t, k in zip(module.t_free[c] if targeted else [], targeted, strict=True):
            onehot = torch.zeros_like(mu)
            onehot[on_target[k]] = 1.0
            mu = mu * (1 + onehot * (torch.exp(h[k] * t) - 1))
        recon = recon + (mu - x[i] * torch.log(mu)).sum() / float(size[i])

    def graph(W, B, k):
        M = W.T @ B @ W
        off = ~torch.eye(M.shape[0], dtype=torch.bool)
        A = adjacency
        edge = A * A * torch.log((1 - k) * (1 - cfg.rho) * M + (1 - cfg.rho) * k)
        nonedge = (1 - A) * torch.log((1 - k) * (1 - cfg.rho) * (1 - M) + cfg.rho)
        return -(edge + nonedge)[off].sum()

    b0 = torch.sigmoid(module.b_free)
    total = cfg.lam * recon + graph(W0, (b0 + b0.T) / 2, kappa[0])
    n_cells = np.bincount(cell_cond, minlength=len(conds))
    for c in range(len(conds) if module.n_own else 0):
        bc = torch.sigmoid(module.b_own_free[c])
        Wc = torch.softmax(module.w_own_free[c], dim=0)
        share = n_cells[c] / n_cells.sum()
        total = total + share * graph(Wc, (bc + bc.T) / 2, kappa[1 + c])
    return total


@pytest.mark.parametrize("n_conditions", [2, 3])
@pytest.mark.parametrize(
    ("param", "own", "drop"),
    [("paper", 2, False), ("effects", 2, False), ("effects", 0, False), ("effects", 2, True)],
)
def test_condition_loss_equals_per_cell_loss(n_conditions, param, own, drop):
    rng = np.random.default_rng(11 + n_conditions)
    adata, scores = _screen(rng, n_conditions, drop=drop)
    stats = compute_group_stats(
        adata, perturbation_key="pert", condition_key="cell_line", min_cells=1,
        allow_counts=True, chunk_size=13, progress=False,
    )  # fmt: skip
    conds = list(stats.uns["pertspectra_stats"]["conditions"])
    want = [f"cond{k}" for k in range(n_conditions)]
    assert conds == (want[::-1] if drop else want)  # the categories' order
    if drop:  # pairs never observed are absent groups
        groups = set(zip(stats.obs["label"], stats.obs["condition"], strict=True))
        assert ("A+B", "cond1") not in groups
        assert ("C", "cond0") not in groups
        assert ("A+C", "cond0") in groups  # C seen in cond0 only within a combination
    group_labels = list(stats.obs["label"])
    design = build_design(dict.fromkeys(group_labels))
    cfg = ModelConfig(n_factors=3, lam=0.7, parametrization=param)
    on_target = [{"A": 0, "B": 1}.get(c, -1) for c in design.columns]
    n_cells = stats.obs["n_cells"].groupby(stats.obs["condition"]).sum()
    share = (n_cells / n_cells.sum()).reindex(conds).to_numpy()
    module = ConditionModule(
        len(design.columns), adata.n_vars, cfg, condition_share=share, condition_factors=own,
        generator=torch.Generator().manual_seed(3), dtype=torch.float64, on_target_gene=on_target,
    )  # fmt: skip
    with torch.no_grad():
        gen = torch.Generator().manual_seed(5)
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.3)
    onehot = np.eye(n_conditions)[[conds.index(c) for c in stats.obs["condition"]]]
    h = torch.as_tensor(np.hstack([design.matrix(group_labels), onehot]), dtype=torch.float64)
    s = torch.as_tensor(stats.layers["weighted_sum"], dtype=torch.float64)
    w = torch.as_tensor(stats.obs["weight"].to_numpy(), dtype=torch.float64)
    prior = GraphPrior.from_scipy(scores, dtype=torch.float64, device="cpu")
    params = [p for p in module.parameters() if p.numel()]
    got = pertspectra_loss(module, h, weighted_sum=s, weight=w, prior=prior).total
    got_grads = torch.autograd.grad(got, params, allow_unused=True)
    adjacency = torch.as_tensor(scores.toarray())
    want = _per_cell_loss(module, adata, design, conds, adjacency, on_target=on_target)
    want_grads = torch.autograd.grad(want, params, allow_unused=True)

    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-10)
    names = [n for n, p in module.named_parameters() if p.numel()]
    for name, g1, g2 in zip(names, got_grads, want_grads, strict=True):
        if g2 is None:  # e.g. the own blocks' kappa without own programs
            assert g1 is None or float(g1.abs().max()) == 0.0, name
            continue
        atol = 1e-12 * float(g2.norm())
        np.testing.assert_allclose(g1.numpy(), g2.numpy(), rtol=1e-10, atol=atol, err_msg=name)
    if param == "effects":  # the on-target terms are there and matter
        assert module.t_free.shape == (n_conditions, 2)


def test_one_condition_view_predicts_as_the_module():
    """``ConditionModel.condition(c)``'s numpy prediction equals the torch module's mean."""
    from pertspectra.model import ConditionModel

    rng = np.random.default_rng(0)
    adata, _ = _screen(rng, 2)
    stats = compute_group_stats(
        adata, perturbation_key="pert", condition_key="cell_line", min_cells=1,
        allow_counts=True, progress=False,
    )  # fmt: skip
    group_labels = list(stats.obs["label"])
    design = build_design(dict.fromkeys(group_labels))
    cfg = ModelConfig(n_factors=3, parametrization="effects")
    on_target = [{"A": 0, "B": 1}.get(c, -1) for c in design.columns]
    module = ConditionModule(
        len(design.columns), adata.n_vars, cfg, condition_share=[0.5, 0.5], condition_factors=2,
        generator=torch.Generator().manual_seed(1), dtype=torch.float64, on_target_gene=on_target,
    )  # fmt: skip
    with torch.no_grad():
        gen = torch.Generator().manual_seed(2)
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.5)
        arrays = {
            "P": module.P, "W": module.W, "B": module.B, "kappa": module.kappa[:1],
            "gene_scale": module.gene_scale, "W_own": module.W_own, "B_own": module.B_own,
            "kappa_own": module.kappa[1:], "gene_scale_own": module.gene_scale_own,
            "on_target": module.on_target,
        }  # fmt: skip
        arrays = {k: v.numpy().copy() for k, v in arrays.items()}
    model = ConditionModel(
        conditions=["cond0", "cond1"], **arrays, genes=list(adata.var_names), design=design,
        config=cfg, condition_labels={c: list(dict.fromkeys(group_labels)) for c in ("cond0", "cond1")},
        on_target_genes={"A": "A", "B": "B"},
    )  # fmt: skip
    ask = ["ctrl", "A", "B+C", "A+B+C"]
    got = model.predict(ask)
    for k, c in enumerate(model.conditions):
        onehot = np.zeros((len(ask), 2))
        onehot[:, k] = 1
        h = torch.as_tensor(np.hstack([design.matrix(ask), onehot]))
        with torch.no_grad():
            want = module.mean(h).numpy()
        np.testing.assert_allclose(got.loc[c].to_numpy(), want, rtol=1e-10)
    # the conditions differ (P per condition), and a view is a valid one-condition model
    assert not np.allclose(got.loc["cond0"].to_numpy(), got.loc["cond1"].to_numpy())
    view = model.condition("cond1")
    assert view.factor_names == ["shared_0", "shared_1", "shared_2", "cond1_0", "cond1_1"]
    np.testing.assert_allclose(view.W.sum(axis=0), 1.0)
