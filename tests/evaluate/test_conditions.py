"""The scorecard per condition: the condition model beside a pooled fit, one fit per condition and
the baselines, on each condition's held-out cells (mcfaline23: three glioma lines)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import pertspectra as ps
from pertspectra.cli import app

pytestmark = pytest.mark.filterwarnings("ignore:the fit did not converge")

FAST = {"n_factors": 8, "max_epochs": 200, "threads": 1}
LINES = ["A172", "T98G", "U87MG"]
METHODS = {
    "pertspectra", "pertspectra_pooled", "pertspectra_separate", "control", "mean",
    "training_mean", "ceiling",
}  # fmt: skip


@pytest.fixture(scope="module")
def mcfaline(shared):
    adata = ad.read_h5ad(shared("combinatorial/perturbench_devel.h5ad"))
    return adata[adata.obs["dataset"] == "mcfaline23"].copy()


@pytest.fixture(scope="module")
def card(mcfaline):
    return ps.evaluate.evaluate_conditions(
        mcfaline, perturbation_key="condition", condition_key="cell_type", folds=1,
        condition_factors=2, fit_options=FAST, progress=False,
    )  # fmt: skip


def test_mcfaline23_scorecard_per_condition(card):
    m = card.metrics
    assert list(m.columns) == ["regime", "condition", "fold", "label", "method", "metric", "value"]
    assert sorted(m["condition"].unique()) == LINES
    assert set(m["regime"]) == {"cells"}
    for line in LINES:
        assert set(m.loc[m.condition == line, "method"]) == METHODS, line
    # PLK4 has 46 cells in A172 (< min_cells 50): scored in the two other lines only
    plk4 = m[(m.label == "PLK4") & (m.method == "pertspectra") & (m.metric == "pearson_delta")]
    assert sorted(plk4["condition"]) == ["T98G", "U87MG"]
    nine = m[(m.method == "pertspectra_separate") & (m.metric == "mse") & (m.condition == "T98G")]
    assert len(nine) == 9
    assert np.isfinite(nine["value"]).all()
    # the summary compares each fit with the baselines in each condition
    s = card.summary
    pairs = s[(s.metric == "pearson_delta") & (s.versus == "mean")]
    got = set(zip(pairs["condition"], pairs["method"], strict=True))
    for line in LINES:
        for method in ("pertspectra", "pertspectra_pooled", "pertspectra_separate"):
            assert (line, method) in got
    # ... and the fits with each other: does sharing programs help?
    fits = s[(s.metric == "mse") & (s.condition == "U87MG")].set_index(["method", "versus"])
    for a, b in (("pertspectra", "pertspectra_pooled"), ("pertspectra", "pertspectra_separate")):
        assert fits.loc[(a, b), "win_rate"] + fits.loc[(b, a), "win_rate"] == pytest.approx(1.0)
        assert fits.loc[(a, b), "n"] == 9  # nine knockouts
    table = ps.evaluate.condition_table(card)
    assert table.index.names == ["regime", "condition", "method"]
    assert list(table.loc[("cells", "A172")].index[:3]) == list(ps.evaluate.CONDITION_FITS)
    runs = pd.DataFrame(card.settings["fits_run"])
    assert sorted(runs["method"].value_counts().items()) == [
        ("pertspectra", 1), ("pertspectra_pooled", 1), ("pertspectra_separate", 3)
    ]  # fmt: skip
    assert card.settings["plain_n_factors"] == 8 + 2


def test_split_within_each_condition(card, mcfaline):
    split = card.split
    cond = mcfaline.obs["cell_type"].astype(str)
    assert (split["condition"].to_numpy() == cond.reindex(split["cell"]).to_numpy()).all()
    assert split["cell"].is_unique  # one fold
    shares = split.groupby(["condition", "label"])["role"].apply(lambda r: (r == "test").mean())
    assert shares.between(0.17, 0.23).all()
    # PLK4's A172 cells were dropped before splitting: no role at all
    plk4_a172 = mcfaline.obs_names[(mcfaline.obs["condition"] == "PLK4") & (cond == "A172")]
    assert not set(plk4_a172) & set(split["cell"])
    assert (mcfaline.obsm["pertspectra_split"].loc[plk4_a172, "fold0"] == "").all()


def test_changes_measured_against_each_conditions_control(card, mcfaline):
    train = card.split[card.split["role"] == "train"]
    control = card.predictions[(0, "control")]
    pooled = card.predictions[(0, "pertspectra_pooled")]
    for line in LINES:
        cells = train[(train["condition"] == line) & (train["label"] == "ctrl")]["cell"]
        own = np.asarray(mcfaline[list(cells)].X.mean(axis=0)).ravel()
        np.testing.assert_allclose(control.loc[f"{line}:MAPK1"], own, rtol=1e-5, atol=1e-6)
    # the pooled fit predicts the same change in every condition, from each one's control
    change = {line: pooled.loc[f"{line}:SGK1"] - control.loc[f"{line}:SGK1"] for line in LINES}
    np.testing.assert_allclose(change["A172"], change["U87MG"], atol=1e-9)
    np.testing.assert_allclose(change["T98G"], change["U87MG"], atol=1e-9)
    # the condition model's predictions differ between the lines
    ours = card.predictions[(0, "pertspectra")]
    assert not np.allclose(ours.loc["A172:SGK1"], ours.loc["U87MG:SGK1"])
    pred, obs = card.changes("pertspectra_separate")
    assert "T98G:MAP2K3" in pred.index.get_level_values("label")
    assert pred.shape == obs.shape


def test_written_and_read_back(card, tmp_path):
    out = card.write(tmp_path / "card")
    again = ps.evaluate.Scorecard.read(out)
    pd.testing.assert_frame_equal(
        again.metrics.reset_index(drop=True), card.metrics.reset_index(drop=True),
        check_dtype=False,
    )  # fmt: skip
    assert sorted(again.summary["condition"].unique()) == LINES
    pd.testing.assert_frame_equal(
        ps.evaluate.condition_table(again), ps.evaluate.condition_table(card)
    )


# ----------------------------------------------------------------- simulated, combinations
SIM_LABELS = ["ctrl", "A", "B", "C", "D", "A+B", "A+C", "B+D", "C+D"]


def _two_lines(cells: int = 40, n_genes: int = 30, seed: int = 0) -> ad.AnnData:
    """Counts of two lines whose singles act on blocks of genes; combinations add up."""
    rng = np.random.default_rng(seed)
    base = {"x": rng.uniform(2, 6, n_genes), "y": rng.uniform(2, 6, n_genes)}
    effect = {t: np.where(np.arange(n_genes) // 6 == k, 3.0, 1.0) for k, t in enumerate("ABCD")}
    rows, obs = [], []
    for line, level in base.items():
        for lab in SIM_LABELS:
            fold_change = np.ones(n_genes)
            for t in [] if lab == "ctrl" else lab.split("+"):
                fold_change = fold_change * (effect[t] if line == "x" else effect[t] ** 0.5)
            rows.append(rng.poisson(level * fold_change, (cells, n_genes)))
            obs += [(lab, line)] * cells
    adata = ad.AnnData(
        X=np.vstack(rows).astype(np.float32),
        obs=pd.DataFrame(obs, columns=["pert", "line"], index=[f"c{i}" for i in range(len(rows) * cells)]),
    )  # fmt: skip
    adata.var_names = [f"g{j}" for j in range(n_genes)]
    return adata


def test_combinations_held_out_per_condition_from_the_cli(tmp_path):
    path = tmp_path / "two_lines.h5ad"
    _two_lines().write_h5ad(path)
    out = tmp_path / "card"
    args = [
        "evaluate", str(path), "--perturbation-key", "pert", "--condition-key", "line",
        "--condition-factors", "1", "--factors", "3", "--epochs", "100", "--threads", "1",
        "--normalize", "log1p", "--min-cells", "20", "--folds", "2", "--no-progress",
        "--out", str(out),
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    for method in ("pertspectra_pooled", "pertspectra_separate", "additive", "ceiling"):
        assert method in result.output
    card = ps.evaluate.Scorecard.read(out)
    m = card.metrics
    comb = m[(m.regime == "combinations") & (m.metric == "pearson_delta")]
    assert set(comb["method"]) == {
        *ps.evaluate.CONDITION_FITS,
        "control",
        "mean",
        "additive",
        "ceiling",
    }
    for line in ("x", "y"):  # each combination held out once in each line
        held = comb[(comb.condition == line) & (comb.method == "pertspectra")]
        assert sorted(held["label"]) == ["A+B", "A+C", "B+D", "C+D"]
    assert set(m.loc[m.regime == "cells", "condition"]) == {"x", "y"}
    assert (out / "split.csv").is_file()
    assert "condition" in card.split.columns
    # the split is reused as it was written
    again = ps.evaluate.evaluate_conditions(
        ad.read_h5ad(path), perturbation_key="pert", condition_key="line", condition_factors=1,
        split=pd.read_csv(out / "split.csv", dtype={"cell": str}), normalize="log1p",
        min_cells=20, fit_options={"n_factors": 3, "max_epochs": 5, "threads": 1},
        progress=False,
    )  # fmt: skip
    pd.testing.assert_frame_equal(again.split, card.split, check_dtype=False)
    # options that do not go with conditions
    bad = CliRunner().invoke(app, [*args[:-2], "--out", str(tmp_path / "b"), "--pseudobulk"])
    assert bad.exit_code != 0
    assert "--pseudobulk" in bad.output


def test_errors(tmp_path):
    adata = _two_lines(cells=25)
    with pytest.raises(ValueError, match="same column"):
        ps.evaluate.evaluate_conditions(
            adata, perturbation_key="pert", condition_key="pert", min_cells=20
        )
    with pytest.raises(KeyError, match="nope"):
        ps.evaluate.evaluate_conditions(
            adata, perturbation_key="pert", condition_key="nope", min_cells=20
        )
    with pytest.raises(ValueError, match="taken"):
        ps.evaluate.evaluate_conditions(
            adata, perturbation_key="pert", condition_key="line",
            predictions={"pertspectra_pooled": pd.DataFrame()},
        )  # fmt: skip
    with pytest.raises(ValueError, match="condition 'x'"):  # 4 combinations, 5 folds
        ps.evaluate.evaluate_conditions(
            adata, perturbation_key="pert", condition_key="line", protocol="combinations",
            folds=5, min_cells=20, normalize="log1p",
        )  # fmt: skip
    adata.write_h5ad(tmp_path / "x.h5ad")
    result = CliRunner().invoke(
        app, ["evaluate", str(tmp_path / "x.h5ad"), "--perturbation-key", "pert",
              "--condition-factors", "2", "--out", str(tmp_path / "o")],
    )  # fmt: skip
    assert result.exit_code != 0
    assert "--condition-key" in result.output


def test_combinations_held_out_together_when_a_condition_lacks_one():
    """Folds are drawn once over every condition's combinations: with A+B missing in line y,
    a combination held out in x is held out in y in the same fold (no fit sees it)."""
    from pertspectra.evaluate._condition_split import cell_groups, condition_split

    adata = _two_lines(cells=25)
    adata = adata[~((adata.obs["line"] == "y") & (adata.obs["pert"] == "A+B"))].copy()
    cells, _, parser, _ = cell_groups(adata, "pert", "line", {"min_cells": 20})
    combos = {"A+B", "A+C", "B+D", "C+D"}
    for folds in (2, 3):
        split = condition_split(cells, folds=folds, split_seed=1, parser=parser)
        assert sorted(split["fold"].unique()) == list(range(folds))
        seen = set()
        for fold, part in split.groupby("fold"):
            test = part[part["role"] == "test"]
            held = set(test["label"]) & combos
            seen |= held
            train = part[(part["role"] == "train") & part["label"].isin(held)]
            assert train.empty, (fold, sorted(held), sorted(set(train["condition"])))
            for line in ("x", "y"):  # held out where the line has it, in this same fold
                has = set(part.loc[part["condition"] == line, "label"])
                mine = set(test.loc[test["condition"] == line, "label"]) & combos
                assert mine == held & has, (fold, line)
        assert seen == combos  # each combination held out in some fold
        # y's combinations held out once each, in the same fold as in x
        test = split[(split["role"] == "test") & split["label"].isin(combos)]
        folds_of = test.groupby(["label"])["fold"].nunique()
        assert (folds_of == 1).all()
    # with every combination in both lines, the split is make_split's within each line
    full = _two_lines(cells=25)
    cells, _, parser, _ = cell_groups(full, "pert", "line", {"min_cells": 20})
    split = condition_split(cells, folds=2, split_seed=1, parser=parser)
    for line, block in cells.groupby("condition"):
        alone = ps.evaluate.make_split(
            list(block["label"]), cells=list(block.index), folds=2, split_seed=1, parser=parser
        )
        mine = split[split["condition"] == line].drop(columns="condition")
        pd.testing.assert_frame_equal(mine.reset_index(drop=True), alone, check_dtype=False)
