"""Every figure draws on the Axes it is given and returns it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import pertspectra as ps
from pertspectra import pl

from .conftest import make_metrics


def _calls():
    metrics = make_metrics()
    combos = metrics[metrics["regime"] == "combinations"]
    summary = ps.evaluate.summarize(combos)
    genes = ["g0", "g1", "g2"]
    control = pd.Series([1.0, 1.0, 1.0], index=genes)
    profiles = pd.DataFrame([[2.0, 0.0, 1.0], [0.0, 3.0, 1.0]], index=["A", "B"], columns=genes)
    sim = pd.DataFrame(np.eye(3), index=genes, columns=genes)
    return {
        "loss": lambda ax: pl.loss({"loss_history": [2.0, 1.0]}, ax=ax),
        "predicted_vs_observed": lambda ax: pl.predicted_vs_observed(
            profiles, profiles, control, ax=ax
        ),
        "scorecard": lambda ax: pl.scorecard(combos, summary=summary, ax=ax),
        "win_rates": lambda ax: pl.win_rates(summary, ax=ax),
        "on_target": lambda ax: pl.on_target(
            pd.DataFrame({"label": ["A"], "gene": ["A"], "observed": [-1.0], "predicted": [-0.5]}),
            ax=ax,
        ),
        "programs": lambda ax: pl.programs(
            pd.DataFrame({"program": ["f0"], "rank": [1], "gene": ["a"], "loading": [1.0]}), ax=ax
        ),
        "perturbation_programs": lambda ax: pl.perturbation_programs(
            pd.DataFrame({"label": ["A"], "program": ["f0"], "effect": [1.0]}), ax=ax
        ),
        "similarity": lambda ax: pl.similarity(
            sim, clusters=pd.Series([1, 1, 2], index=genes), ax=ax
        ),
        "precision_recall": lambda ax: pl.precision_recall(
            pd.DataFrame(
                {"pairs_file": "p", "embedding": "e", "precision": [1.0, 0.5], "recall": [0, 1.0]}
            ),
            ax=ax,
        ),
        "interaction": lambda ax: pl.interaction(
            profiles.loc["A"], profiles.loc["B"], profiles.loc["A"], control=control, ax=ax
        ),
        "interaction_summary": lambda ax: pl.interaction_summary(metrics, ax=ax),
        "prior_coverage": lambda ax: pl.prior_coverage(
            {"n_genes": 3, "n_genes_with_edges": 2, "n_edges": 1}, degrees=np.ones(3), ax=ax
        ),
    }


CALLS = _calls()


def test_every_public_figure_is_covered():
    assert sorted(CALLS) == sorted(pl.__all__)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_draws_on_the_given_axes(name):
    fig, ax = plt.subplots()
    assert CALLS[name](ax) is ax
    assert ax.has_data()
    assert fig.axes[0] is ax


@pytest.mark.parametrize("name", sorted(CALLS))
def test_new_figure_when_no_axes(name):
    before = set(plt.get_fignums())
    ax = CALLS[name](None)
    assert set(plt.get_fignums()) - before == {ax.figure.number}
