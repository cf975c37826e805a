"""Perturbation embeddings and their similarity matrices."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import pdist
from sklearn.metrics.pairwise import cosine_similarity

import pertspectra.similarity as sim
from pertspectra.enrich import program_activity, single_labels
from pertspectra.predict import predict_change

SINGLES = ["G0", "G1", "G2", "G3", "G4", "G5"]


def _x(stats, label):
    return np.asarray(stats.X[list(stats.obs_names).index(label)], dtype=np.float64)


def test_model_embeddings(toy_model):
    labels = single_labels(toy_model)
    assert labels == SINGLES
    p = sim.embedding(toy_model, kind="P")
    assert p.shape == (6, toy_model.config.n_factors)
    assert list(p.index) == SINGLES
    assert p.index.name == "label"
    assert "ctrl" not in p.index
    cols = toy_model.design.columns
    np.testing.assert_array_equal(p.loc["G3"].to_numpy(), toy_model.P[cols.index("G3")])
    np.testing.assert_array_equal(p.to_numpy(), toy_model.P[:6])

    prog = sim.embedding(toy_model, kind="program_change")
    pd.testing.assert_frame_equal(prog, program_activity(toy_model))

    gene = sim.embedding(toy_model, kind="gene_change")
    assert gene.shape == (6, len(toy_model.genes))
    assert gene.index.name == "label"
    want = predict_change(toy_model, SINGLES)
    np.testing.assert_allclose(gene.to_numpy(), want.to_numpy(), rtol=0, atol=0)
    ctrl = toy_model.predict(["ctrl"]).to_numpy()[0]
    np.testing.assert_allclose(
        gene.loc["G1"].to_numpy(),
        toy_model.predict(["G1"]).to_numpy()[0] - ctrl,
        rtol=1e-12,
        atol=1e-12,
    )


def test_data_change_is_group_mean_minus_control(toy_stats, toy_model):
    emb = sim.data_embedding(toy_stats)
    assert list(emb.index) == SINGLES  # combinations and the control left out
    assert emb.shape == (6, toy_stats.n_vars)
    for label in ("G0", "G4"):
        np.testing.assert_allclose(
            emb.loc[label].to_numpy(), _x(toy_stats, label) - _x(toy_stats, "ctrl"), atol=1e-12
        )
    via_model = sim.embedding(toy_model, kind="data_change", data=toy_stats)
    pd.testing.assert_frame_equal(via_model, emb.loc[:, toy_model.genes])

    # only the labels present in both, only the model's genes
    part = toy_stats[[n for n in toy_stats.obs_names if n not in {"G2", "G5"}]].copy()
    cut = sim.embedding(toy_model, kind="data_change", data=part)
    assert list(cut.index) == ["G0", "G1", "G3", "G4"]
    picked = sim.data_embedding(toy_stats, labels=["G3", "G0+G2"], genes=["gene5", "gene1"])
    assert list(picked.columns) == ["gene5", "gene1"]
    j = list(toy_stats.var_names).index("gene1")
    want = _x(toy_stats, "G0+G2")[j] - _x(toy_stats, "ctrl")[j]
    assert picked.loc["G0+G2", "gene1"] == pytest.approx(want, abs=1e-12)


def test_data_pca_keeps_the_geometry(toy_stats, toy_model):
    change = sim.data_embedding(toy_stats)
    pca = sim.data_embedding(toy_stats, kind="data_pca")
    # min(50, 6 - 1, 60) components span all of the 6 centred points
    assert pca.shape == (6, 5)
    assert list(pca.columns) == [f"PC{i}" for i in range(1, 6)]
    np.testing.assert_allclose(pdist(pca.to_numpy()), pdist(change.to_numpy()), rtol=1e-8)
    var = pca.var(axis=0).to_numpy()
    assert np.all(np.diff(var) <= 1e-12)  # decreasing explained variance
    again = sim.embedding(toy_model, kind="data_pca", data=toy_stats)
    np.testing.assert_allclose(again.to_numpy(), pca.to_numpy(), atol=1e-10)


def test_embedding_errors(toy_model, toy_stats):
    with pytest.raises(ValueError, match="unknown embedding kind 'nope'"):
        sim.embedding(toy_model, kind="nope")
    with pytest.raises(ValueError, match="needs data="):
        sim.embedding(toy_model, kind="data_change")
    with pytest.raises(ValueError, match="unknown embedding kind 'P'"):
        sim.data_embedding(toy_stats, kind="P")
    no_ctrl = toy_stats[[n != "ctrl" for n in toy_stats.obs_names]].copy()
    with pytest.raises(ValueError, match="no control row"):
        sim.data_embedding(no_ctrl)
    with pytest.raises(ValueError, match=r"not in data\.obs_names"):
        sim.data_embedding(toy_stats, labels=["G0", "G99"])
    with pytest.raises(ValueError, match="no genes left"):
        sim.data_embedding(toy_stats, genes=["nothing"])
    with pytest.raises(ValueError, match="at least two labels"):
        sim.data_embedding(toy_stats, kind="data_pca", labels=["G0"])


def test_similarity_metrics_against_numpy():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(7, 12))
    emb = pd.DataFrame(x, index=[f"L{i}" for i in range(7)])
    corr = sim.similarity_matrix(emb)
    np.testing.assert_allclose(corr.to_numpy(), np.corrcoef(x), atol=1e-12)
    assert list(corr.index) == list(corr.columns) == list(emb.index)
    cos = sim.similarity_matrix(emb, metric="cosine")
    np.testing.assert_allclose(cos.to_numpy(), cosine_similarity(x), atol=1e-12)
    euc = sim.similarity_matrix(emb, metric="euclidean")
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    np.testing.assert_allclose(euc.to_numpy(), 1 - d / d.max(), atol=1e-12)
    for s in (corr, cos, euc):
        np.testing.assert_array_equal(np.diag(s.to_numpy()), 1.0)
        np.testing.assert_array_equal(s.to_numpy(), s.to_numpy().T)
    assert euc.to_numpy().min() == pytest.approx(0.0, abs=1e-12)
    dist = sim.distance_matrix(emb, metric="euclidean")
    np.testing.assert_allclose(dist.to_numpy(), d, atol=1e-12)
    np.testing.assert_allclose(sim.distance_matrix(emb).to_numpy(), 1 - np.corrcoef(x), atol=1e-12)


def test_zero_variance_rows_give_nan(caplog):
    x = np.array([[1.0, 2.0, 3.0], [2.0, 2.0, 2.0], [0.0, 0.0, 0.0], [3.0, 1.0, 2.0]])
    emb = pd.DataFrame(x, index=["a", "flat", "zero", "b"])
    with caplog.at_level(logging.WARNING, logger="pertspectra.similarity._distance"):
        corr = sim.similarity_matrix(emb)
    assert "2 label(s) have zero variance" in caplog.text
    assert np.isnan(corr.loc["a", "flat"])
    assert np.isnan(corr.loc["zero", "b"])
    assert corr.loc["a", "b"] == pytest.approx(np.corrcoef(x[0], x[3])[0, 1])
    assert corr.loc["flat", "flat"] == 1.0
    cos = sim.similarity_matrix(emb, metric="cosine")
    assert np.isnan(cos.loc["zero", "a"])
    assert cos.loc["flat", "a"] == pytest.approx(cosine_similarity(x[[1, 0]])[0, 1])
    with pytest.raises(ValueError, match="unknown metric"):
        sim.similarity_matrix(emb, metric="manhattan")
    with pytest.raises(ValueError, match="duplicated labels"):
        sim.similarity_matrix(pd.DataFrame(x, index=["a", "a", "b", "c"]))
