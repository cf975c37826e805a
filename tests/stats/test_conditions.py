"""Group statistics per (label, condition): the same single pass, checked against pandas."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from pertspectra.stats import compute_group_stats


def _screen(seed: int = 0) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    labels = rng.choice(["ctrl", "A", "B", "A+B", "B+A"], 600)
    conds = rng.choice(["line1", "line2", "line3"], 600)
    labels[np.isin(labels, ["A+B", "B+A"]) & (conds == "line3")] = "A"  # A+B never in line3
    x = rng.gamma(1.0, 1.0, (600, 9)) * (rng.random((600, 9)) < 0.5)
    adata = ad.AnnData(
        X=sp.csr_matrix(x),
        obs=pd.DataFrame(
            {"pert": labels, "line": pd.Categorical(conds, categories=["line3", "line1", "line2"])},
            index=[f"c{i}" for i in range(600)],
        ),
    )
    adata.var_names = [f"g{j}" for j in range(9)]
    return adata


def test_statistics_per_label_and_condition_equal_pandas(caplog):
    adata = _screen()
    with caplog.at_level(logging.WARNING):
        stats = compute_group_stats(
            adata, perturbation_key="pert", condition_key="line", min_cells=5,
            allow_counts=True, chunk_size=37, progress=False,
        )  # fmt: skip
    info = stats.uns["pertspectra_stats"]
    assert info["conditions"] == ["line3", "line1", "line2"]  # the categories' order
    assert info["condition_key"] == "line"
    assert "A+B" in " ".join(info["missing_in_condition"]["line3"])
    assert "condition 'line3' lacks 1 label(s)" in caplog.text
    canon = adata.obs["pert"].replace({"B+A": "A+B"})
    frame = pd.DataFrame(adata.X.toarray(), index=adata.obs_names)
    want = frame.groupby([canon.to_numpy(), adata.obs["line"].astype(str).to_numpy()]).mean()
    for name, row in stats.obs.iterrows():
        assert name == f"{row['condition']}:{row['label']}"
        np.testing.assert_allclose(
            stats[name].X.ravel(), want.loc[(row["label"], row["condition"])]
        )
        n = int(((canon == row["label"]) & (adata.obs["line"] == row["condition"])).sum())
        assert row["n_cells"] == n
        np.testing.assert_allclose(row["weight"], 1.0)  # 1/|label and condition| per cell
    assert ("A+B", "line3") not in set(zip(stats.obs["label"], stats.obs["condition"], strict=True))
    assert len(stats) == 3 * 4 - 1


def test_condition_errors_name_the_problem():
    adata = _screen()
    with pytest.raises(ValueError, match="same column"):
        compute_group_stats(adata, perturbation_key="pert", condition_key="pert", allow_counts=True)
    with pytest.raises(KeyError, match="condition_key"):
        compute_group_stats(
            adata, perturbation_key="pert", condition_key="lines", allow_counts=True
        )
    bad = adata.copy()
    bad.obs["line"] = bad.obs["line"].astype(object)
    bad.obs.iloc[3, 1] = None
    with pytest.raises(ValueError, match="missing or empty for 1 cell"):
        compute_group_stats(
            bad, perturbation_key="pert", condition_key="line", allow_counts=True, min_cells=5
        )
    no_ctrl = adata[~((adata.obs["pert"] == "ctrl") & (adata.obs["line"] == "line2"))].copy()
    with pytest.raises(ValueError, match="control cells: line2"):
        compute_group_stats(
            no_ctrl, perturbation_key="pert", condition_key="line", allow_counts=True, min_cells=5
        )
