"""The scorecard: every regime, the baselines, a ceiling and external predictions, end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import pertspectra as ps
from pertspectra.cli import app

FIT = {"pertspectra": {"n_factors": 4, "max_epochs": 40}}


@pytest.fixture(scope="module")
def sim():
    return ps.datasets.simulate_screen(
        n_genes=80, n_single=6, n_double=8, cells_per_label=60, n_control_cells=200, seed=1
    )


def test_combinations_scorecard(sim):
    card = ps.evaluate.evaluate(
        sim, perturbation_key="perturbation", folds=2, fits=FIT, progress=False, min_cells=10
    )
    m = card.metrics
    assert list(m.columns) == ["regime", "condition", "fold", "label", "method", "metric", "value"]
    assert set(m["regime"]) == {"combinations", "cells"}
    comb = m[m.regime == "combinations"]
    assert set(comb["method"]) == {"pertspectra", "control", "mean", "additive", "ceiling"}
    cells = m[m.regime == "cells"]
    assert set(cells["method"]) == {"pertspectra", "control", "mean", "training_mean", "ceiling"}
    assert "interaction_pearson" in set(comb["metric"])
    assert "rank_l1" in set(comb["metric"])
    # each eligible combination held out exactly once across the folds
    held = comb[(comb.method == "pertspectra") & (comb.metric == "pearson_delta")]
    assert held["label"].is_unique
    eligible = ps.evaluate.eligible_combinations(list(sim.obs["perturbation"].unique()))
    assert sorted(held["label"]) == sorted(eligible)
    s = card.summary
    row = s[(s.method == "pertspectra") & (s.metric == "mse") & (s.versus == "control")]
    assert len(row) == 2  # one per regime
    assert (row["win_rate"].between(0, 1)).all()
    # the split is on the AnnData, one column per fold
    assert list(sim.obsm["pertspectra_split"].columns) == ["fold0", "fold1"]


def test_additive_baseline_hand_made():
    genes = ["g1", "g2"]
    means = pd.DataFrame(
        [[1.0, 2.0], [2.0, 2.0], [1.0, 5.0]], index=["ctrl", "A", "B"], columns=genes
    )
    base = ps.evaluate.baseline_predictions(means, ["A+B"])
    np.testing.assert_allclose(base["additive"].loc["A+B"], [2.0, 5.0])
    np.testing.assert_allclose(base["mean"].loc["A+B"], [1.5, 3.5])
    np.testing.assert_allclose(base["control"].loc["A+B"], [1.0, 2.0])


def test_external_predictions_score_like_ours(sim, tmp_path):
    """A predictions file holding our own predictions gets our numbers, to the last digit."""
    card = ps.evaluate.evaluate(
        sim, perturbation_key="perturbation", folds=2, fits=FIT, progress=False, min_cells=10
    )
    rows = []
    for (fold, method), table in card.predictions.items():
        if method == "pertspectra":
            rows.append(table.assign(fold=fold).rename_axis("label").reset_index())
    path = tmp_path / "ours.csv"
    table = pd.concat(rows)
    # other tools spell combinations their own way: B+A, A+ctrl
    table["label"] = [
        "+".join(reversed(lab.split("+"))) if "+" in lab else f"{lab}+ctrl"
        for lab in table["label"]
    ]
    table.to_csv(path, index=False)
    external = ps.evaluate.read_predictions(path)
    again = ps.evaluate.evaluate(
        sim, perturbation_key="perturbation", split=card.split, fits=FIT, progress=False,
        predictions={"copy": external}, min_cells=10,
    )  # fmt: skip
    m = again.metrics
    ours = m[m.method == "pertspectra"].set_index(["regime", "fold", "label", "metric"])["value"]
    theirs = m[m.method == "copy"].set_index(["regime", "fold", "label", "metric"])["value"]
    pd.testing.assert_series_equal(
        ours.sort_index(), theirs.sort_index(), check_names=False, rtol=1e-6
    )
    # a held-out label missing from the file is an error naming it
    short = external[external["label"] != external["label"].iloc[0]]
    with pytest.raises(KeyError, match="no row for held-out label"):
        ps.evaluate.evaluate(
            sim, perturbation_key="perturbation", split=card.split, fits=FIT, progress=False,
            predictions={"short": short}, min_cells=10,
        )  # fmt: skip


def test_cells_protocol_rejects_pseudobulk_and_bad_names(sim):
    with pytest.raises(ValueError, match="taken"):
        ps.evaluate.evaluate(
            sim, perturbation_key="perturbation", fits={"mean": {}}, progress=False
        )


def test_cli_evaluate_on_wessels(shared, tmp_path):
    path = shared("combinatorial/wessels2023_carpool_substrate.h5ad")
    out = tmp_path / "eval"
    res = CliRunner().invoke(
        app,
        [
            "evaluate", str(path), "--perturbation-key", "label", "--control", "NT_NT",
            "--pseudobulk", "--factors", "8", "--epochs", "300", "--folds", "2",
            "--no-progress", "--out", str(out),
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    for name in ("metrics.csv", "summary.csv", "split.csv", "settings.json"):
        assert (out / name).is_file()
    metrics = pd.read_csv(out / "metrics.csv", keep_default_na=False)
    methods = set(metrics["method"])
    assert {"pertspectra", "control", "mean", "additive", "ceiling"} <= methods
    held = metrics[(metrics.method == "ceiling") & (metrics.metric == "pearson_delta")]
    assert held["label"].nunique() == 158  # every double held out once, each with its ceiling
    split = pd.read_csv(out / "split.csv", keep_default_na=False)
    assert (split["cell"] == "").all()
    # a second run refuses to overwrite
    again = CliRunner().invoke(
        app,
        ["evaluate", str(path), "--perturbation-key", "label", "--pseudobulk", "--out", str(out)],
    )
    assert again.exit_code == 1
    assert "--overwrite" in again.output


def test_cli_evaluate_cells_split_reuse_and_errors(tmp_path, toy_adata):
    path = tmp_path / "toy.h5ad"
    toy_adata.write_h5ad(path)
    base = [
        "evaluate", str(path), "--perturbation-key", "perturbation", "--factors", "3",
        "--epochs", "20", "--folds", "2", "--no-progress", "--min-cells", "10",
    ]  # fmt: skip
    runner = CliRunner()
    res = runner.invoke(app, [*base, "--protocol", "cells", "--out", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    split = pd.read_csv(tmp_path / "a" / "split.csv", keep_default_na=False)
    assert set(split["role"]) == {"train", "val", "test"}
    assert set(pd.read_csv(tmp_path / "a" / "metrics.csv")["regime"]) == {"cells"}
    res = runner.invoke(
        app, [*base, "--split", str(tmp_path / "a" / "split.csv"), "--out", str(tmp_path / "b")]
    )
    assert res.exit_code == 0, res.output
    a = pd.read_csv(tmp_path / "a" / "metrics.csv")
    b = pd.read_csv(tmp_path / "b" / "metrics.csv")
    pd.testing.assert_frame_equal(a, b)  # same split, same seed: the same scorecard
    res = runner.invoke(app, [*base, "--predictions", "oops", "--out", str(tmp_path / "c")])
    assert res.exit_code == 1
    assert "NAME=FILE" in res.output
    singles = toy_adata[~toy_adata.obs["perturbation"].astype(str).str.contains(r"\+")].copy()
    singles.write_h5ad(tmp_path / "singles.h5ad")
    res = runner.invoke(
        app,
        ["evaluate", str(tmp_path / "singles.h5ad"), "--perturbation-key", "perturbation",
         "--protocol", "combinations", "--out", str(tmp_path / "d")],
    )  # fmt: skip
    assert res.exit_code == 1
    assert "there is none" in res.output
    assert "Traceback" not in res.output


def test_scorecard_written_and_read_back_with_observed_changes(sim, tmp_path):
    card = ps.evaluate.evaluate(
        sim, perturbation_key="perturbation", folds=2, fits=FIT, progress=False, min_cells=10
    )
    card.write(tmp_path / "card")
    back = ps.evaluate.Scorecard.read(tmp_path / "card")
    pd.testing.assert_frame_equal(back.metrics, card.metrics, check_dtype=False)
    assert set(back.predictions) == set(card.predictions)
    assert set(back.observed) == {0, 1}
    pred, obs = back.changes("pertspectra")
    assert pred.index.names == ["fold", "label"]
    fold, label = obs.index[0]
    control = card.predictions[(fold, "control")].loc[label]
    np.testing.assert_allclose(
        obs.loc[(fold, label)].to_numpy(), (card.observed[fold].loc[label] - control).to_numpy()
    )
    np.testing.assert_allclose(
        pred.loc[(fold, label)].to_numpy(),
        (card.predictions[(fold, "pertspectra")].loc[label] - control).to_numpy(),
        rtol=1e-6,
    )
    # the stored pearson_delta is the correlation of exactly these changes
    stored = back.metrics.query(
        "fold == @fold and label == @label and method == 'pertspectra' and metric == 'pearson_delta'"
    )["value"].iloc[0]
    r = np.corrcoef(pred.loc[(fold, label)], obs.loc[(fold, label)])[0, 1]
    assert r == pytest.approx(stored, rel=1e-5)
    with pytest.raises(KeyError, match="no held-out predictions"):
        back.changes("nosuchmethod")
    with pytest.raises(FileNotFoundError, match="no scorecard"):
        ps.evaluate.Scorecard.read(tmp_path)
