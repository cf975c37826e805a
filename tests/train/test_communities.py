"""The communities start: the prior graph's communities arrange ``W`` and ``B`` before epoch 1."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

import pertspectra as ps
from pertspectra.train._init import (
    COMMUNITY_LOGIT,
    communities_init,
    prior_communities,
    resolve_init,
)


def _planted(n_blocks=4, size=6, n_isolated=10, seed=0):
    """Cliques of ``size`` genes (weights 0.5-1) joined by a few weak edges, then isolated genes."""
    rng = np.random.default_rng(seed)
    g = n_blocks * size + n_isolated
    a = np.zeros((g, g))
    for b in range(n_blocks):
        idx = slice(b * size, (b + 1) * size)
        a[idx, idx] = rng.uniform(0.5, 1.0, size=(size, size))
    for b in range(n_blocks - 1):  # a bridge between consecutive blocks
        a[b * size, (b + 1) * size] = 0.2
    a = np.triu(a, 1)
    a = a + a.T
    truth = np.repeat(np.arange(n_blocks), size)
    return sp.csr_matrix(a), np.concatenate([truth, np.full(n_isolated, -1)])


def test_communities_recover_planted_blocks_whatever_the_seed_and_skip_isolated_genes():
    adj, truth = _planted()
    got = prior_communities(adj, n_factors=4)
    assert (got[truth < 0] == -1).all()
    on = truth >= 0
    # the same partition up to the communities' names
    pairs = {(int(t), int(c)) for t, c in zip(truth[on], got[on], strict=True)}
    assert len(pairs) == 4
    assert len({c for _, c in pairs}) == 4
    np.testing.assert_array_equal(prior_communities(adj.toarray(), n_factors=4), got)


def test_communities_fall_back_to_a_dense_eigensolver_when_arpack_fails(monkeypatch):
    import scipy.sparse.linalg

    adj, truth = _planted()
    sparse = prior_communities(adj, n_factors=4)

    def fails(*args, **kwargs):
        raise scipy.sparse.linalg.ArpackNoConvergence("no convergence", np.empty(0), None)

    monkeypatch.setattr(scipy.sparse.linalg, "eigsh", fails)
    dense = prior_communities(adj, n_factors=4)
    assert (dense[truth < 0] == -1).all()
    on = truth >= 0
    assert len({(int(a), int(b)) for a, b in zip(sparse[on], dense[on], strict=True)}) == 4


def test_communities_are_capped_by_the_factors_and_by_half_the_connected_genes():
    adj, _ = _planted()
    assert prior_communities(adj, n_factors=3).max() == 2
    assert prior_communities(adj, n_factors=50).max() == 24 // 2 - 1
    few = sp.csr_matrix(
        ([1.0, 1.0], ([0, 1], [1, 0])), shape=(6, 6)
    )  # one edge: nothing to arrange
    assert (prior_communities(few, n_factors=4) == -1).all()


def test_a_communities_start_leans_each_gene_on_its_community_and_closes_b():
    from pertspectra.model._module import PertSpectraModule

    adj, truth = _planted()
    config = ps.model.ModelConfig(n_factors=5)
    make = lambda: PertSpectraModule(  # noqa: E731
        4, adj.shape[0], config, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    module, draw = make(), make()
    communities_init(module, truth)
    with torch.no_grad():
        on = torch.as_tensor(truth >= 0)
        lead = module.W.argmax(0)[on].numpy()
        np.testing.assert_array_equal(lead, truth[truth >= 0])
        assert torch.equal(module.w_free[:, ~on], draw.w_free[:, ~on])  # no edge: the draw
        eye = torch.eye(5, dtype=torch.bool)
        assert float(module.B[eye].min()) > 0.999
        assert float(module.B[~eye].max()) < 1e-4
        assert float(module.b_free[eye].min()) > COMMUNITY_LOGIT - 1
    with pytest.raises(ValueError, match="communities reach factor 5"):
        communities_init(make(), np.array([5] + [-1] * (adj.shape[0] - 1)))


def test_communities_need_a_prior_and_are_for_fit_only(toy_stats):
    kw = {"parametrization": "effects", "n_factors": 5, "n_labels": 11}
    with pytest.raises(ValueError, match="init='communities' needs a prior graph"):
        resolve_init("communities", has_prior=False, **kw)
    assert resolve_init("communities", has_prior=True, **kw) == "communities"
    with pytest.raises(ValueError, match="needs a prior graph"):
        ps.train.fit(toy_stats, init="communities", n_factors=4, max_epochs=5, progress=False)


def test_auto_skips_the_communities_starts_where_the_prior_has_too_few_edges(toy_stats):
    stats = toy_stats.copy()
    genes = list(stats.var_names)
    ps.priors.add_prior(stats, pd.DataFrame({"source": genes[:1], "target": genes[1:2]}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = ps.train.fit(stats, n_factors=4, max_epochs=40, cycle_epochs=20, progress=False)
    assert model.training["start"] == "random"
    with pytest.warns(UserWarning, match="it has no communities; the fit starts from the random"):
        model = ps.train.fit(
            stats, init="communities", n_factors=4, max_epochs=40, cycle_epochs=20, progress=False
        )
    assert model.training["start"] == "random"


def test_seeds_agree_with_the_string_prior_on_a_real_crispri_screen(screen_path, string_table):
    # from the random start five seeds ended 2.9% apart here (docs/optimization.md)
    adata = ps.io.read_screen(screen_path("schraivogel2020_k562_tapseq_crispri_74genes.h5ad"))
    stats = ps.stats.compute_group_stats(
        adata, perturbation_key="perturbation", normalize="log1p",
        exclude_labels=["none_detected"], progress=False,
    )  # fmt: skip
    ps.priors.add_prior(stats, string_table)
    losses = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for seed in (0, 1, 2):
            model = ps.train.fit(stats, seed=seed, progress=False, threads=2, store=False)
            assert model.training["start"] == "communities"
            assert model.training["converged"]
            losses.append(model.training["final_loss"])
        rand = ps.train.fit(stats, seed=0, init="random", progress=False, threads=2, store=False)
    losses = np.array(losses)
    assert np.ptp(losses) <= 0.005 * np.abs(losses).min()
    assert losses.max() < rand.training["final_loss"]  # lower than the authors' start


def test_regularized_communities_split_a_dense_core_into_small_dense_ones(shared, string_table):
    # On Wessels' prior the plain normalized Laplacian (scikit-learn's SpectralClustering, the
    # first version) put the dense core into a few large communities (up to 69 genes, 3,439
    # non-edges inside communities) and the fit started from it ended 1.3% above the random
    # start; the degree-regularized embedding splits it into small, dense ones
    # (docs/optimization.md)
    import anndata as ad
    from sklearn.cluster import SpectralClustering

    genes = ad.read_h5ad(shared("combinatorial/wessels2023_carpool_substrate.h5ad")).var_names
    stats = ad.AnnData(np.zeros((1, len(genes)), dtype=np.float32), var=pd.DataFrame(index=genes))
    ps.priors.add_prior(stats, string_table)
    adj = sp.csr_matrix(stats.varp["pertspectra_prior"])
    adj = adj.maximum(adj.T)
    adj.setdiag(0)
    adj.eliminate_zeros()
    edges = (adj > 0).astype(np.float64)
    connected = np.asarray(edges.sum(axis=1)).ravel() > 0
    assert connected.sum() > 1000  # one large component holds most of them

    def non_edges_inside(labels):
        n = np.bincount(labels[labels >= 0])
        on = np.flatnonzero(labels >= 0)
        member = sp.csr_matrix((np.ones(on.size), (on, labels[on])), shape=(len(labels), n.size))
        inside = (member.T @ edges @ member).diagonal() / 2
        return (n * (n - 1) / 2 - inside).sum(), n.max()

    ours = prior_communities(adj, n_factors=200)
    assert ours.max() + 1 == 200
    plain = np.full(len(genes), -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        plain[connected] = SpectralClustering(
            200, affinity="precomputed", assign_labels="cluster_qr", random_state=0
        ).fit_predict(adj[connected][:, connected])
    ours_non_edges, ours_largest = non_edges_inside(ours)
    plain_non_edges, plain_largest = non_edges_inside(plain)
    assert ours_non_edges < 0.5 * plain_non_edges
    assert ours_largest < 0.5 * plain_largest
