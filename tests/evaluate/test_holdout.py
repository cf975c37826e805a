"""Hold out, fit, score: the split rules and the held-out regimes used by demo and benchmarks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pertspectra as ps
from pertspectra.evaluate import holdout_cells, holdout_combinations, split_cells


def test_split_cells_is_stratified_and_seeded():
    labels = np.array(["a"] * 50 + ["b"] * 21 + ["c"] * 4, dtype=object)
    test = split_cells(labels, fraction=0.2, seed=3)
    counts = pd.Series(labels[test]).value_counts()
    assert counts.to_dict() == {"a": 10, "b": 4, "c": 1}
    np.testing.assert_array_equal(test, split_cells(labels, fraction=0.2, seed=3))
    assert not np.array_equal(test, split_cells(labels, fraction=0.2, seed=4))
    with pytest.raises(ValueError, match="fraction"):
        split_cells(labels, fraction=1.0)


def test_holdout_combinations_scores_held_out_doubles(toy_stats):
    res = holdout_combinations(
        toy_stats, fits={"m": {"n_factors": 4, "max_epochs": 30}}, fraction=0.5, seed=0,
        progress=False,
    )  # fmt: skip
    held = list(res.observed.index)
    assert held
    assert all("+" in lab for lab in held)
    assert not set(held) & set(res.train.obs_names)
    for lab in held:  # every held-out double's singles stayed in training
        assert set(lab.split("+")) <= set(res.train.obs_names)
    assert set(res.metrics) == {"m", "control", "mean", "additive"}
    ctrl = res.control.to_numpy()
    additive = ctrl.copy()
    a, b = held[0].split("+")
    additive = ctrl + (res.train[a].X[0] - ctrl) + (res.train[b].X[0] - ctrl)
    np.testing.assert_allclose(res.predictions["additive"].loc[held[0]].to_numpy(), additive)
    table = res.table(["pearson_delta", "mse"])
    assert list(table.columns) == ["pearson_delta", "mse"]
    assert res.models["m"].training["epochs"] == 30


def test_holdout_cells_uses_training_means(toy_adata):
    res = holdout_cells(
        toy_adata, perturbation_key="perturbation", fits={"m": {"n_factors": 4, "max_epochs": 20}},
        fraction=0.2, seed=1, progress=False, min_cells=10,
    )  # fmt: skip
    assert "ctrl" not in res.observed.index
    assert {"m", "training_mean", "control", "mean"} == set(res.metrics)
    n_train = int(res.train.obs["n_cells"].sum())
    labels = toy_adata.obs["perturbation"].to_numpy(dtype=object)
    assert n_train == toy_adata.n_obs - split_cells(labels, fraction=0.2, seed=1).sum()
    # the training mean of a label is its mean over the training cells
    lab = res.observed.index[0]
    np.testing.assert_allclose(res.predictions["training_mean"].loc[lab], res.train[lab].X[0])


def test_rng_is_an_old_spelling_of_seed(toy_stats):
    kw = {"n_factors": 3, "max_epochs": 10, "progress": False}
    ps.testing.assert_models_equal(
        ps.train.fit(toy_stats, rng=5, **kw), ps.train.fit(toy_stats, seed=5, **kw)
    )
