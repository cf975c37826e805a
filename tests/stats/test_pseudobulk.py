"""from_pseudobulk: per-label means give the same statistics (and objective) as the cells."""

from __future__ import annotations

import re

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

import pertspectra as ps
from pertspectra.design import LabelParser, build_design
from pertspectra.model import ModelConfig, PertSpectraModule, pertspectra_loss
from pertspectra.stats import compute_group_stats, from_pseudobulk
from pertspectra.testing import shared_data_dir
from pertspectra.train import is_group_stats

WESSELS = "combinatorial/wessels2023_carpool_substrate.h5ad"


def _cells(split: bool = False) -> ad.AnnData:
    """The toy screen (log-normalized X); ``split`` relabels some cells ``B+A`` / ``A+ctrl``."""
    cells = ps.datasets.toy(seed=0)
    if split:
        lab = cells.obs["perturbation"].astype(str).to_numpy().copy()
        idx = np.flatnonzero(lab == "G2+G4")[::3]
        lab[idx] = "G4+G2"
        idx = np.flatnonzero(lab == "G0")[::2]
        lab[idx] = "G0+ctrl"
        cells.obs["perturbation"] = lab
    return cells


def _pseudobulk(cells: ad.AnnData, key: str = "perturbation") -> ad.AnnData:
    """Per raw label: mean of the cells and their count (written independently of stats/)."""
    x = np.asarray(cells.X.toarray(), dtype=np.float64)
    lab = cells.obs[key].astype(str).to_numpy()
    names = list(pd.unique(lab))[::-1]  # any row order
    means = np.vstack([x[lab == n].mean(axis=0) for n in names])
    obs = pd.DataFrame(
        {"label": names, "n": [int((lab == n).sum()) for n in names]},
        index=[f"row{i}" for i in range(len(names))],
    )
    return ad.AnnData(X=means, obs=obs, var=cells.var.copy())


def _max_rel(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def _per_cell_loss(module, x, cell_rows, eta, adjacency, lam, rho, delta):
    """Written from the paper's formula: per cell, then dense graph over ordered pairs."""
    P = torch.exp(module.p_free)
    W = torch.softmax(module.w_free, dim=0)
    b = torch.sigmoid(module.b_free)
    B = (b + b.T) / 2
    nu = torch.sigmoid(module.gene_scale_free)
    kappa = torch.sigmoid(module.kappa_free)
    mu = (nu + delta) * (cell_rows @ P @ W)  # cells x genes: every cell its own mean
    recon = (eta[:, None] * (mu - x * torch.log(mu))).sum()
    M = W.T @ B @ W
    off = ~torch.eye(M.shape[0], dtype=torch.bool)
    A = adjacency
    edge = A * A * torch.log((1 - kappa) * (1 - rho) * M + (1 - rho) * kappa)
    nonedge = (1 - A) * torch.log((1 - kappa) * (1 - rho) * (1 - M) + rho)
    graph = -(edge + nonedge)[off].sum()
    return lam * recon + graph


@pytest.mark.parametrize(
    ("with_counts", "split"),
    [(False, False), (True, False), (True, True)],  # split rows need counts (tested below)
)
def test_pseudobulk_equals_group_stats_of_the_cells(with_counts, split):
    cells = _cells(split)
    want = compute_group_stats(cells, perturbation_key="perturbation", min_cells=1, progress=False)
    pb = _pseudobulk(cells)
    got = from_pseudobulk(pb, perturbation_key="label", n_cells_key="n" if with_counts else None)
    assert is_group_stats(got)
    assert list(got.obs_names) == list(want.obs_names)
    assert got.obs_names[0] == "ctrl"
    np.testing.assert_array_equal(got.obs["weight"].to_numpy(), want.obs["weight"].to_numpy())
    np.testing.assert_allclose(got.X, want.X, rtol=1e-12, atol=0)
    np.testing.assert_allclose(
        got.layers["weighted_sum"], want.layers["weighted_sum"], rtol=1e-12, atol=0
    )
    assert "sum_squares" not in got.layers
    info = got.uns["pertspectra_stats"]
    assert info["pseudobulk"] is True
    assert info["n_cells_known"] is with_counts
    assert set(want.uns["pertspectra_stats"]) <= set(info)
    if with_counts:
        assert got.obs["n_cells"].dtype == np.int64
        np.testing.assert_array_equal(got.obs["n_cells"], want.obs["n_cells"])
        np.testing.assert_allclose(got.layers["sum"], want.layers["sum"], rtol=1e-12, atol=0)
        assert info["merged_labels"] == (["G0", "G2+G4"] if split else [])
    else:
        assert got.obs["n_cells"].isna().all()
        assert "sum" not in got.layers
        # one row per label: the means pass through untouched (exact, not just close)
        order = [list(pb.obs["label"]).index(lab) for lab in got.obs_names]
        np.testing.assert_array_equal(got.layers["weighted_sum"], pb.X[order])


def test_objective_on_pseudobulk_equals_per_cell_objective_on_replicated_cells():
    pb = _pseudobulk(_cells())
    stats = from_pseudobulk(pb, perturbation_key="label")  # no counts: the paper's weighting
    labels = list(stats.obs_names)
    design = build_design(labels)
    cfg = ModelConfig(n_factors=4, lam=0.7, rho=0.05, delta=0.001, parametrization="paper")
    module = PertSpectraModule(
        len(design.columns),
        stats.n_vars,
        cfg,
        generator=torch.Generator().manual_seed(3),
        dtype=torch.float64,
    )
    with torch.no_grad():  # move away from the symmetric init so every parameter matters
        gen = torch.Generator().manual_seed(5)
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.3)
    h = torch.as_tensor(design.matrix(labels), dtype=torch.float64)
    s = torch.as_tensor(stats.layers["weighted_sum"], dtype=torch.float64)
    w = torch.as_tensor(stats.obs["weight"].to_numpy(), dtype=torch.float64)
    got = pertspectra_loss(module, h, weighted_sum=s, weight=w, prior=None).total
    got_grads = torch.autograd.grad(got, list(module.parameters()))

    # cells replicated from the means: each row's mean repeated n times, eta = 1/n
    n = pb.obs["n"].to_numpy()
    x = torch.as_tensor(np.repeat(pb.X, n, axis=0), dtype=torch.float64)
    raw = np.repeat(pb.obs["label"].to_numpy(), n)
    rows = torch.as_tensor(np.vstack([design.row(lab) for lab in raw]), dtype=torch.float64)
    eta = torch.as_tensor(np.repeat(1.0 / n, n), dtype=torch.float64)
    adjacency = torch.zeros((stats.n_vars, stats.n_vars), dtype=torch.float64)
    want = _per_cell_loss(module, x, rows, eta, adjacency, cfg.lam, cfg.rho, cfg.delta)
    want_grads = torch.autograd.grad(want, list(module.parameters()))

    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-10)
    for (name, _), g1, g2 in zip(module.named_parameters(), got_grads, want_grads, strict=True):
        atol = 1e-12 * float(g2.norm())
        np.testing.assert_allclose(g1.numpy(), g2.numpy(), rtol=1e-10, atol=atol, err_msg=name)


def test_uniform_weighting_needs_counts_and_matches_the_cells():
    cells = _cells(split=True)
    want = compute_group_stats(
        cells, perturbation_key="perturbation", min_cells=1, weighting="uniform", progress=False
    )
    pb = _pseudobulk(cells)
    got = from_pseudobulk(pb, perturbation_key="label", n_cells_key="n", weighting="uniform")
    assert list(got.obs_names) == list(want.obs_names)
    np.testing.assert_array_equal(got.obs["weight"].to_numpy(), want.obs["weight"].to_numpy())
    np.testing.assert_array_equal(got.obs["n_cells"], want.obs["n_cells"])
    np.testing.assert_allclose(got.X, want.X, rtol=1e-12, atol=0)
    np.testing.assert_allclose(
        got.layers["weighted_sum"], want.layers["weighted_sum"], rtol=1e-12, atol=0
    )
    assert got.uns["pertspectra_stats"]["weighting"] == "uniform"
    with pytest.raises(ValueError, match=r"weighting='uniform'.*n_cells_key"):
        from_pseudobulk(pb, perturbation_key="label", weighting="uniform")


def _table(labels, x=None, n=None, **layers) -> ad.AnnData:
    rng = np.random.default_rng(1)
    x = rng.random((len(labels), 3)) if x is None else np.asarray(x, dtype=float)
    obs = pd.DataFrame({"p": labels}, index=[f"r{i}" for i in range(len(labels))])
    if n is not None:
        obs["n"] = n
    a = ad.AnnData(X=x, obs=obs, layers=layers or None)
    a.var_names = ["g0", "g1", "g2"]
    return a


def test_canonical_labels_order_and_layers_follow_the_rows():
    labels = ["B+A", "non-targeting", "A+ctrl", "B", "ctrl+C", "none_detected"]
    a = _table(labels, half=np.arange(18.0).reshape(6, 3))
    a.layers["means"] = a.X * 2
    stats = from_pseudobulk(a, perturbation_key="p", exclude_labels=["none_detected"])
    assert list(stats.obs_names) == ["ctrl", "A", "A+B", "B", "C"]
    order = [1, 2, 0, 3, 4]
    np.testing.assert_array_equal(stats.X, a.X[order])
    np.testing.assert_array_equal(stats.layers["half"], a.layers["half"][order])
    np.testing.assert_array_equal(stats.layers["means"], a.layers["means"][order])
    # a layer holds the means: it becomes X, the other layers are kept
    by_layer = from_pseudobulk(
        a, perturbation_key="p", layer="means", exclude_labels=["none_detected"]
    )
    np.testing.assert_array_equal(by_layer.X, a.layers["means"][order])
    assert "means" not in by_layer.layers
    assert "half" in by_layer.layers
    assert stats.uns["pertspectra_stats"]["exclude_labels"] == ["none_detected"]


def test_duplicates_are_count_weighted_or_rejected():
    x = [[0.5, 0.5, 0.5], [1.0, 2.0, 3.0], [3.0, 0.0, 1.0], [2.0, 2.0, 2.0]]
    a = _table(["ctrl", "A+B", "B+A", "A"], x=x, n=[10, 2, 6, 5], half=np.array(x) + 1)
    stats = from_pseudobulk(a, perturbation_key="p", n_cells_key="n")
    assert list(stats.obs_names) == ["ctrl", "A", "A+B"]
    want = (2 * np.array(x[1]) + 6 * np.array(x[2])) / 8
    np.testing.assert_allclose(stats.X[2], want, rtol=1e-15)
    np.testing.assert_allclose(stats.layers["half"][2], want + 1, rtol=1e-15)
    assert stats.obs["n_cells"].tolist() == [10, 5, 8]
    assert stats.uns["pertspectra_stats"]["merged_labels"] == ["A+B"]
    with pytest.raises(ValueError, match=r"'A\+B' from rows \['A\+B', 'B\+A'\].*n_cells_key"):
        from_pseudobulk(a, perturbation_key="p")


def test_duplicates_need_counts():
    pb = _pseudobulk(_cells(split=True))
    with pytest.raises(ValueError, match=r"several rows canonicalize to one label \('G0'"):
        from_pseudobulk(pb, perturbation_key="label")


def test_min_cells_with_counts_drops_and_reports():
    a = _table(["ctrl", "A", "B", "A+B"], n=[100, 160, 20, 3])
    stats = from_pseudobulk(a, perturbation_key="p", n_cells_key="n", min_cells=50)
    assert list(stats.obs_names) == ["ctrl", "A"]
    info = stats.uns["pertspectra_stats"]
    assert info["dropped_labels"] == ["A+B", "B"]
    assert info["dropped_n_cells"] == [3, 20]
    assert info["min_cells"] == 50
    with pytest.raises(ValueError, match="no label has at least min_cells=500"):
        from_pseudobulk(a, perturbation_key="p", n_cells_key="n", min_cells=500)
    # the control below min_cells: the error compute_group_stats gives on the cells
    cells = ad.AnnData(
        X=np.ones((283, 3)),
        obs=pd.DataFrame(
            {"p": np.repeat(a.obs["p"].to_numpy(), a.obs["n"])},
            index=[f"c{i}" for i in range(283)],
        ),
    )
    with pytest.raises(ValueError, match="no control cells") as from_cells:
        compute_group_stats(cells, perturbation_key="p", min_cells=101, progress=False)
    with pytest.raises(ValueError, match=re.escape(str(from_cells.value))):
        from_pseudobulk(a, perturbation_key="p", n_cells_key="n", min_cells=101)
    with pytest.raises(ValueError, match=r"min_cells=50 needs the number of cells"):
        from_pseudobulk(a, perturbation_key="p", min_cells=50)
    assert from_pseudobulk(a, perturbation_key="p", min_cells=1).n_obs == 4


def test_no_control_row_gives_the_error_of_compute_group_stats():
    a = _table(["A", "B", "A+B"])
    cells = ad.AnnData(X=np.ones((3, 3)), obs=a.obs.copy())
    with pytest.raises(ValueError, match="no control cells") as from_cells:
        compute_group_stats(cells, perturbation_key="p", min_cells=1, progress=False)
    with pytest.raises(ValueError, match=re.escape(str(from_cells.value))):
        from_pseudobulk(a, perturbation_key="p")


def test_nan_or_inf_means_name_the_label():
    x = np.ones((3, 3))
    x[2, 1] = np.nan
    with pytest.raises(
        ValueError, match=r"X contains NaN or infinite values for label\(s\) \['B'\]"
    ):
        from_pseudobulk(_table(["ctrl", "A", "B"], x=x), perturbation_key="p")
    x[2, 1], x[1, 0] = 1.0, np.inf
    with pytest.raises(ValueError, match=r"NaN or infinite values for label\(s\) \['A'\]"):
        from_pseudobulk(_table(["ctrl", "A", "B"], x=x), perturbation_key="p")
    bad = np.ones((3, 3))
    bad[1, 1] = np.nan
    a = _table(["ctrl", "A", "B"], m=bad)
    with pytest.raises(ValueError, match=r"layer 'm' contains NaN or infinite .*\['A'\]"):
        from_pseudobulk(a, perturbation_key="p", layer="m")
    x[1, 0] = -0.5
    with pytest.raises(ValueError, match=r"negative values for label\(s\) \['A'\]"):
        from_pseudobulk(_table(["ctrl", "A", "B"], x=x), perturbation_key="p")
    x[1, 0] = np.nan  # an excluded row may hold anything
    stats = from_pseudobulk(
        _table(["ctrl", "A", "B"], x=x), perturbation_key="p", exclude_labels=["A"]
    )
    assert list(stats.obs_names) == ["ctrl", "B"]


def test_missing_columns_raise_key_errors():
    a = _table(["ctrl", "A"], n=[3, 4])
    with pytest.raises(KeyError, match="'label' not found"):
        from_pseudobulk(a, perturbation_key="label")
    with pytest.raises(KeyError, match="'counts' not found"):
        from_pseudobulk(a, perturbation_key="p", n_cells_key="counts")
    with pytest.raises(KeyError, match="layer 'nope' not found"):
        from_pseudobulk(a, perturbation_key="p", layer="nope")


@pytest.mark.parametrize(
    ("n", "kind"),
    [
        ([3, -4], "negative"),
        ([3, 4.5], "not an integer"),
        ([3, np.nan], "missing or not a number"),
        ([3, 0], "zero"),
    ],
)
def test_bad_counts_raise(n, kind):
    a = _table(["ctrl", "A"], n=n)
    with pytest.raises(
        ValueError, match=rf"positive integer cell counts; {kind} for label\(s\) \['A="
    ):
        from_pseudobulk(a, perturbation_key="p", n_cells_key="n")


def test_counts_as_float_integers_are_accepted():
    stats = from_pseudobulk(
        _table(["ctrl", "A"], n=[3.0, 4.0]), perturbation_key="p", n_cells_key="n"
    )
    assert stats.obs["n_cells"].tolist() == [3, 4]
    assert stats.obs["n_cells"].dtype == np.int64


def test_explicit_controls_must_match_a_label():
    a = _table(["NT_NT", "A", "A+B"])
    with pytest.raises(ValueError, match=r"control label\(s\) \['NT-NT'\] match no label"):
        from_pseudobulk(a, perturbation_key="p", controls=["NT-NT"])
    stats = from_pseudobulk(a, perturbation_key="p", controls=["NT_NT"])
    assert list(stats.obs_names) == ["ctrl", "A", "A+B"]
    assert stats.uns["pertspectra_stats"]["controls"] == ["NT_NT", "ctrl"]


def test_other_errors():
    a = _table(["ctrl", "A"])
    with pytest.raises(ValueError, match="weighting must be"):
        from_pseudobulk(a, perturbation_key="p", weighting="cells")
    a.obs.loc["r1", "p"] = np.nan
    with pytest.raises(ValueError, match=r"1 row\(s\) have a missing"):
        from_pseudobulk(a, perturbation_key="p")
    b = _table(["ctrl", "A"])
    b.var_names = ["g0", "g0", "g1"]
    with pytest.raises(ValueError, match="duplicated gene names"):
        from_pseudobulk(b, perturbation_key="p")


def test_prior_and_provenance_are_carried_over_and_sparse_input_works():
    a = _table(["ctrl", "A", "A+B"])
    prior = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=float))
    a.varp["pertspectra_prior"] = prior
    a.uns["pertspectra_prior"] = {"source": "test"}
    a.uns["pertspectra_target_types"] = {"A": "gene", "B": "enhancer"}
    dense = from_pseudobulk(a, perturbation_key="p")
    a.X = sp.csr_matrix(a.X)
    stats = from_pseudobulk(a, perturbation_key="p")
    np.testing.assert_array_equal(stats.X, dense.X)
    assert (stats.varp["pertspectra_prior"] != prior).nnz == 0
    assert stats.uns["pertspectra_prior"] == {"source": "test"}
    assert stats.uns["pertspectra_target_types"] == {"A": "gene", "B": "enhancer"}


def test_fit_accepts_pseudobulk_stats():
    stats = from_pseudobulk(_pseudobulk(_cells()), perturbation_key="label")
    model = ps.train.fit(stats, n_factors=3, max_epochs=5, progress=False, seed=0)
    assert model.W.shape == (3, stats.n_vars)
    assert model.training["statistics"]["pseudobulk"] is True


@pytest.fixture(scope="module")
def wessels() -> ad.AnnData:
    folder = shared_data_dir(required=WESSELS)
    if folder is None:
        pytest.skip(f"shared real data not available: {WESSELS}")
    return ad.read_h5ad(folder / WESSELS)


def test_wessels_means(wessels):
    stats = from_pseudobulk(wessels, perturbation_key="label", controls=["NT_NT"])
    parser = LabelParser(controls=("NT_NT",))
    assert stats.n_obs == 187
    assert stats.obs_names[0] == "ctrl"
    assert sum(len(parser.tokens(lab)) > 1 for lab in stats.obs_names) == 158
    np.testing.assert_array_equal(stats.obs["weight"].to_numpy(), 1.0)
    assert stats.obs["n_cells"].isna().all()
    canon = [parser.canonical(lab) for lab in wessels.obs["label"]]
    order = [canon.index(lab) for lab in stats.obs_names]
    np.testing.assert_array_equal(stats.X, np.asarray(wessels.X, dtype=np.float64)[order])
    np.testing.assert_array_equal(stats.layers["weighted_sum"], stats.X)
    for name in ("half1_mean", "half2_mean"):
        np.testing.assert_array_equal(stats.layers[name], wessels.layers[name][order])
    assert is_group_stats(stats)
    with pytest.raises(ValueError, match="no control cells"):
        from_pseudobulk(wessels, perturbation_key="label")  # NT_NT is no built-in alias


def test_wessels_tiny_fit(wessels):
    stats = from_pseudobulk(wessels, perturbation_key="label", controls=["NT_NT"])
    model = ps.train.fit(stats, n_factors=4, max_epochs=20, progress=False)
    assert model.W.shape == (4, 2000)
    assert model.training["n_labels"] == 187
    assert np.isfinite(model.training["final_loss"])
