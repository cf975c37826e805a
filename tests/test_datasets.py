from __future__ import annotations

import numpy as np
import pytest

import pertspectra as ps
from pertspectra.design import LabelParser


@pytest.mark.parametrize("truth", ["log_additive", "pertspectra"])
def test_simulated_labels_are_canonical_and_truth_consistent(truth):
    adata = ps.datasets.simulate_screen(
        n_genes=80,
        n_programs=4,
        n_single=8,
        n_double=10,
        cells_per_label=60,
        n_control_cells=200,
        truth=truth,
        seed=0,
    )
    labels = list(adata.obs["perturbation"].cat.categories)
    parser = LabelParser()
    assert all(parser.canonical(lab) == lab for lab in labels)
    sim = adata.uns["simulation"]
    assert list(sim["true_mean"].index) == labels
    assert sum("+" in lab for lab in labels) == 10
    # the observed group means follow the expected log-normalized profile
    stats = ps.stats.compute_group_stats(adata, perturbation_key="perturbation", progress=False)
    corr = np.corrcoef(
        stats.X.ravel(), sim["true_mean"].loc[list(stats.obs_names)].to_numpy().ravel()
    )[0, 1]
    assert corr > 0.98
    counts = adata.layers["counts"]
    assert np.all(np.mod(counts.data, 1) == 0)
