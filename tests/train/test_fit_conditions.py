"""Fitting under several conditions: a program of one condition lands in that condition's block."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import pertspectra as ps
from pertspectra.evaluate import matched_correlation

N_GENES, BLOCK = 48, 12
LABELS = ["ctrl", "A", "B", "C", "D", "E"]


def _two_condition_screen(seed: int = 0, cells: int = 120) -> tuple[ad.AnnData, np.ndarray]:
    """Three shared programs in both conditions; a fourth (genes 36-47) only in ``on``.

    Fitted with as many shared and own programs as the truth has (3 + 1); measured with seed
    0: the own program of ``on`` matches the fourth at 0.94, that of ``off`` at -0.66.
    """
    rng = np.random.default_rng(seed)
    programs = np.zeros((4, N_GENES))
    for k in range(4):
        programs[k, k * BLOCK : (k + 1) * BLOCK] = rng.uniform(0.5, 1.5, BLOCK)
    shared = rng.uniform(0.5, 3.0, (len(LABELS), 3))
    own = rng.uniform(0.0, 6.0, len(LABELS))  # varies by label, in condition "on" only
    rows, obs = [], []
    for cond in ("off", "on"):
        for i, lab in enumerate(LABELS):
            load = np.r_[shared[i] * (1.0 if cond == "off" else rng.uniform(0.7, 1.3, 3)), 0.0]
            if cond == "on":
                load[3] = own[i]
            mean = 0.05 + 4.0 * load @ programs
            rows.append(rng.poisson(mean, (cells, N_GENES)))
            obs += [(lab, cond)] * cells
    x = np.vstack(rows).astype(np.float32)
    adata = ad.AnnData(
        X=x,
        obs=pd.DataFrame(obs, columns=["pert", "state"], index=[f"c{i}" for i in range(len(x))]),
    )
    adata.var_names = [f"g{j}" for j in range(N_GENES)]
    return adata, programs


@pytest.fixture(scope="module")
def fitted():
    adata, programs = _two_condition_screen()
    model = ps.train.fit_conditions(
        adata, perturbation_key="pert", condition_key="state", n_factors=3,
        condition_factors=1, allow_counts=True, progress=False, seed=0, max_epochs=3000,
    )  # fmt: skip
    return adata, programs, model


def test_one_condition_program_lands_in_its_block(fitted):
    _, programs, model = fitted
    truth = programs[3:4]  # the program of condition "on"
    on = model.condition("on")
    own_on = on.W[3:] * (on.gene_scale + model.config.delta)  # its own program, scaled
    off = model.condition("off")
    own_off = off.W[3:] * (off.gene_scale + model.config.delta)
    best_on = float(matched_correlation(truth, own_on).max())
    best_off = float(matched_correlation(truth, own_off).max())
    assert best_on >= 0.9, (best_on, best_off)
    assert best_off < best_on - 0.2, (best_on, best_off)
    # the shared programs recover the three shared ones (measured: 0.99, 0.80, 0.995)
    shared = model.W * (model.gene_scale + model.config.delta)
    assert matched_correlation(programs[:3], shared).min() >= 0.75
    assert model.training["converged"]


def test_combination_predicted_in_each_condition(fitted):
    adata, _, model = fitted
    pred = model.predict(["ctrl", "A", "B", "A+B"])
    assert list(pred.index.get_level_values("condition").unique()) == ["off", "on"]
    for cond in ("off", "on"):
        p = pred.loc[cond]
        # the effects parametrization adds the singles' changes from control
        additive = p.loc["A"] + p.loc["B"] - p.loc["ctrl"]
        above = (additive > 0.05).to_numpy()  # below, the mean is clamped at the floor
        assert above.sum() >= N_GENES // 3
        np.testing.assert_allclose(p.loc["A+B"][above], additive[above], rtol=1e-6)
        # and the fitted singles follow the observed means of that condition
        for lab in ("ctrl", "A", "B"):
            cells = (adata.obs["pert"] == lab) & (adata.obs["state"] == cond)
            observed = np.asarray(adata.X[cells.to_numpy()].mean(axis=0)).ravel()
            assert np.corrcoef(observed, p.loc[lab])[0, 1] > 0.98
    # the program of "on" moves the combination only there
    block = slice(36, 48)
    assert (
        pred.loc[("on", "A+B")].iloc[block].mean() > 3 * pred.loc[("off", "A+B")].iloc[block].mean()
    )


def test_save_load_round_trip(fitted, tmp_path):
    _, _, model = fitted
    model.save(tmp_path / "m")
    assert ps.model.is_condition_model(tmp_path / "m")
    back = ps.model.ConditionModel.load(tmp_path / "m")
    pd.testing.assert_frame_equal(back.predict(["A+B", "C"]), model.predict(["A+B", "C"]))
    with pytest.raises(ValueError, match="several conditions"):
        ps.model.load_model(tmp_path / "m")
    with pytest.raises(FileExistsError):
        model.save(tmp_path / "m")


def test_errors_name_the_problem(fitted):
    adata, _, model = fitted
    with pytest.raises(KeyError, match="unknown condition 'nope'"):
        model.predict(["A"], condition="nope")
    with pytest.raises(ValueError, match="same column"):
        ps.train.fit_conditions(
            adata, perturbation_key="pert", condition_key="pert", progress=False
        )
    with pytest.raises(ValueError, match="fit_conditions"):
        ps.train.fit(
            adata, perturbation_key="pert", condition_key="state", allow_counts=True, progress=False
        )
    with pytest.raises(KeyError, match="not_a_column"):
        ps.train.fit_conditions(
            adata, perturbation_key="pert", condition_key="not_a_column", progress=False
        )


@pytest.mark.filterwarnings("ignore:the fit did not converge")
def test_label_missing_in_a_condition_is_predicted_where_seen():
    adata, _ = _two_condition_screen(cells=40)
    gone = ((adata.obs["pert"] == "E") & (adata.obs["state"] == "off")).to_numpy()
    model = ps.train.fit_conditions(
        adata[~gone].copy(), perturbation_key="pert", condition_key="state", n_factors=3,
        condition_factors=1, allow_counts=True, min_cells=10, progress=False, max_epochs=30,
    )  # fmt: skip
    assert "E" not in model.condition_labels["off"]
    with pytest.warns(UserWarning, match="E in off"):
        pred = model.predict(["A", "E", "A+E"])
    assert list(pred.index) == [("off", "A"), ("on", "A"), ("on", "E"), ("on", "A+E")]
    with pytest.raises(KeyError, match=r"never seen in condition 'off' \(seen in E: on\)"):
        model.predict(["E"], condition="off")
    with pytest.raises(KeyError, match="Z"):
        model.predict(["Z"])


def test_statistics_with_their_condition_key_and_reserved_names():
    adata, _ = _two_condition_screen(cells=20)
    stats = ps.stats.compute_group_stats(
        adata, perturbation_key="pert", condition_key="state", allow_counts=True, min_cells=10,
        progress=False,
    )  # fmt: skip
    with pytest.raises(ValueError, match="computed per 'state'"):
        ps.train.fit_conditions(stats, condition_key="other", progress=False)
    shared = adata.copy()
    shared.obs["state"] = shared.obs["state"].replace({"on": "shared"})
    with pytest.raises(ValueError, match="named 'shared'"):
        ps.train.fit_conditions(
            shared, perturbation_key="pert", condition_key="state", allow_counts=True,
            min_cells=10, progress=False,
        )  # fmt: skip
    with pytest.warns(UserWarning, match="did not converge"):
        model = ps.train.fit_conditions(
            stats, condition_key="state", n_factors=2, condition_factors=1, max_epochs=5,
            progress=False,
        )  # fmt: skip
    assert model.conditions == ["off", "on"]


def test_w_rate_scale_reaches_the_condition_fit():
    adata, _ = _two_condition_screen(cells=40)
    kw = {"perturbation_key": "pert", "condition_key": "state", "n_factors": 3}
    kw |= {"condition_factors": 1, "allow_counts": True, "min_cells": 10}
    kw |= {"progress": False, "seed": 0}
    kw |= {"max_epochs": 60, "cycle_epochs": 40}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # short fits do not converge
        default = ps.train.fit_conditions(adata, **kw)
        scaled = ps.train.fit_conditions(adata, w_rate_scale=0.3, **kw)
    assert scaled.training["w_rate_scale"] == 0.3
    assert default.training["w_rate_scale"] == 1.0
    own = scaled.condition("on").W
    assert not np.allclose(default.condition("on").W, own)


def test_a_condition_fit_starts_at_random_and_refuses_means():
    adata, _ = _two_condition_screen(cells=40)
    kw = {"perturbation_key": "pert", "condition_key": "state", "n_factors": 3}
    kw |= {"condition_factors": 1, "allow_counts": True, "min_cells": 10, "progress": False}
    with pytest.raises(ValueError, match="init='means' is for fit"):
        ps.train.fit_conditions(adata, init="means", max_epochs=5, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # short fits do not converge
        model = ps.train.fit_conditions(adata, max_epochs=5, **kw)
    assert model.training["start"] == "random"
