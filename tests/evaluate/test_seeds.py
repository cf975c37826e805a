"""seed_agreement: objectives, predictions and programs of fits that differ in their seed."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest

import pertspectra as ps


@pytest.fixture(scope="module")
def fits():
    stats = ps.stats.compute_group_stats(
        ps.datasets.toy(seed=0), perturbation_key="perturbation", progress=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return [
            ps.train.fit(stats, n_factors=4, max_epochs=300, progress=False, seed=s) for s in (0, 1)
        ]


def _permuted(model, perm):
    """The same model with its factors in another order (same predictions)."""
    return replace(
        model,
        W=model.W[perm],
        P=model.P[:, perm],
        B=model.B[np.ix_(perm, perm)],
        training={**model.training, "final_loss": model.training["final_loss"] + 1.0},
    )


def test_a_fit_agrees_with_itself_with_its_factors_reordered(fits):
    a = fits[0]
    perm = np.array([2, 0, 3, 1])
    b = _permuted(a, perm)
    np.testing.assert_allclose(b.predict(["G0"]).to_numpy(), a.predict(["G0"]).to_numpy())
    ag = ps.evaluate.seed_agreement([a, b])
    pair = ag.pairs.iloc[0]
    assert pair["change_pearson"] == pytest.approx(1.0)
    assert pair["change_mae"] == pytest.approx(0.0, abs=1e-12)
    assert pair["factors_matched"] == 1.0
    np.testing.assert_allclose(ag.factors["r_1"], 1.0)
    assert ag.summary["reproduced_factors"] == 4
    assert ag.summary["reference"] == 0  # the lower objective
    assert ag.fits["reference"].tolist() == [True, False]
    loss = a.training["final_loss"]
    assert pair["objective_gap"] == pytest.approx(1.0 / min(abs(loss), abs(loss + 1.0)))
    dev = a.training["convergence"]["deviance"]
    span = a.config.lam * (dev["null_recon"] - dev["saturated_recon"])
    assert pair["objective_gap_deviance"] == pytest.approx(1.0 / span)


def test_two_seeds_disagree_somewhat_and_the_tables_have_their_shapes(fits):
    ag = ps.evaluate.seed_agreement(fits, threshold=0.99, n_top=3)
    assert (len(ag.fits), len(ag.pairs), len(ag.factors)) == (2, 1, 4)
    assert ag.fits["seed"].tolist() == [0, 1]
    pair = ag.pairs.iloc[0]
    assert pair["change_mae"] > 0
    assert -1 <= pair["change_pearson"] < 1
    assert all(len(g.split(", ")) == 3 for g in ag.factors["top_genes"])
    ref = fits[ag.summary["reference"]]
    top = ref.genes[int(np.argmax(ref.W[0]))]
    assert ag.factors["top_genes"].iloc[0].split(", ")[0] == top
    assert (ag.summary["n_fits"], ag.summary["n_factors"]) == (2, 4)


def test_refuses_what_cannot_be_compared(fits):
    with pytest.raises(ValueError, match="at least two"):
        ps.evaluate.seed_agreement(fits[:1])
    m = fits[1]
    other = replace(
        m, W=m.W[:3] / m.W[:3].sum(0), P=m.P[:, :3], B=m.B[:3, :3],
        config=replace(m.config, n_factors=3),
    )  # fmt: skip
    with pytest.raises(ValueError, match="3 factors"):
        ps.evaluate.seed_agreement([fits[0], other])
    kept = dict(list(m.design.labels.items())[:-1])
    fewer = replace(m, design=replace(m.design, labels=kept))
    with pytest.raises(ValueError, match="other labels"):
        ps.evaluate.seed_agreement([fits[0], fewer])
