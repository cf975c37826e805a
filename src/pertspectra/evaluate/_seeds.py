"""Do fits that differ only in their seed agree? Objectives, predictions and programs.

Factors are not identifiable: two fits of one screen can reach the same predictions with their
programs arranged differently, and with a prior graph they often end in different optima.
:func:`seed_agreement` puts numbers on that for a set of fits: how far their objectives lie apart
(relative, and in units of the reconstruction's deviance range, which has no arbitrary offset),
how well their predicted changes agree, and which programs of the best fit come back in the
others (matched one to one by the correlation of their gene loadings, Hungarian algorithm).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..design import CONTROL_LABEL
from ..predict import predict_change
from ._metrics import matched_correlation

if TYPE_CHECKING:
    from ..model._fitted import FittedModel


@dataclass
class SeedAgreement:
    """How far fits of one screen agree (:func:`seed_agreement`).

    Attributes
    ----------
    fits
        One row per fit: ``seed``, ``final_loss``, ``deviance_explained``, ``converged``,
        ``epochs``; ``reference`` marks the fit with the lowest objective.
    pairs
        One row per pair of fits ``i < j``: ``objective_gap`` (the difference relative to the
        smaller absolute objective), ``objective_gap_deviance`` (in units of ``lam`` times the
        null minus the saturated reconstruction; NaN for models saved without it),
        ``change_pearson`` and ``change_mae`` (the predicted changes from control of all
        labels, every gene, flattened), ``factor_r_median`` and ``factors_matched`` (the median
        matched correlation of the two fits' programs, and the share at or above
        ``threshold``).
    factors
        One row per program of the reference fit: its matched correlation in each other fit
        (``r_<fit>``), their ``median`` and ``min``, ``reproduced`` (median at or above
        ``threshold``) and its ``top_genes`` (largest loadings).
    summary
        The headline numbers (see :func:`seed_agreement`).
    """

    fits: pd.DataFrame
    pairs: pd.DataFrame
    factors: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


def _seed(training: dict[str, Any]) -> Any:
    fit_seed = training.get("fit_seed")
    return fit_seed if fit_seed is not None else training.get("seed")


def _deviance_span(model: FittedModel) -> float:
    dev = model.training.get("convergence", {}).get("deviance") or {}
    if "null_recon" not in dev:
        return float("nan")
    span = float(model.config.lam) * (dev["null_recon"] - dev["saturated_recon"])
    return span if span > 0 else float("nan")


def _check(models: Sequence[FittedModel]) -> None:
    if len(models) < 2:
        msg = f"seed_agreement needs at least two fitted models, got {len(models)}"
        raise ValueError(msg)
    first = models[0]
    for i, m in enumerate(models[1:], start=1):
        if list(m.genes) != list(first.genes):
            msg = f"model {i} has other genes than model 0: fits of one screen are compared"
            raise ValueError(msg)
        if sorted(m.labels) != sorted(first.labels):
            msg = f"model {i} was fitted on other labels than model 0: fits of one screen are compared"
            raise ValueError(msg)
        if m.W.shape[0] != first.W.shape[0]:
            msg = (
                f"model {i} has {m.W.shape[0]} factors, model 0 {first.W.shape[0]}: compare "
                "fits with the same settings"
            )
            raise ValueError(msg)


def seed_agreement(
    models: Sequence[FittedModel],
    *,
    labels: Iterable[object] | None = None,
    threshold: float = 0.9,
    n_top: int = 10,
) -> SeedAgreement:
    """Agreement of fits of one screen that differ only in their seed.

    Parameters
    ----------
    models
        At least two fitted models of the same statistics and settings (e.g.
        ``[ps.train.fit(stats, seed=s) for s in range(5)]``).
    labels
        Labels whose predicted changes from control are compared; default the labels the first
        model was fitted on, without the control.
    threshold
        A program counts as matched (in a pair) or reproduced (over all fits) at a matched
        correlation of at least this.
    n_top
        Genes listed per program of the reference fit.

    Returns
    -------
    :class:`SeedAgreement`; its ``summary`` holds ``n_fits``, ``n_factors``,
    ``objective_spread`` (largest minus smallest objective, relative to the smallest absolute
    one), ``objective_spread_deviance`` (the same in deviance units), ``change_pearson_min``
    and ``change_pearson_median`` over the pairs, ``factor_r_median`` (over all pairs'
    matched programs), ``reproduced_factors`` (programs of the reference fit reproduced in the
    others) and ``reference`` (its position in ``models``).

    Raises
    ------
    ValueError
        For fewer than two models, or models of different genes, labels or numbers of factors.
    """
    models = list(models)
    _check(models)
    if labels is None:
        labels = [lab for lab in models[0].labels if lab != CONTROL_LABEL]
    labels = list(labels)
    losses = np.array([float(m.training.get("final_loss", np.nan)) for m in models])
    ref = int(np.nanargmin(losses)) if np.isfinite(losses).any() else 0
    fits = pd.DataFrame(
        {
            "seed": [_seed(m.training) for m in models],
            "final_loss": losses,
            "deviance_explained": [m.training.get("deviance_explained") for m in models],
            "converged": [m.training.get("converged") for m in models],
            "epochs": [m.training.get("epochs") for m in models],
        }
    )
    fits["reference"] = fits.index == ref
    changes = [predict_change(m, labels).to_numpy(dtype=float).ravel() for m in models]
    spans = np.array([_deviance_span(m) for m in models])
    rows, matched = [], []
    for i, j in combinations(range(len(models)), 2):
        gap = abs(losses[i] - losses[j])
        r = matched_correlation(models[i].W, models[j].W)
        matched.append(r)
        rows.append(
            {
                "fit_a": i,
                "fit_b": j,
                "objective_gap": gap / max(min(abs(losses[i]), abs(losses[j])), 1e-12),
                "objective_gap_deviance": gap / spans[i],
                "change_pearson": float(np.corrcoef(changes[i], changes[j])[0, 1]),
                "change_mae": float(np.abs(changes[i] - changes[j]).mean()),
                "factor_r_median": float(np.median(r)),
                "factors_matched": float((r >= threshold).mean()),
            }
        )
    pairs = pd.DataFrame(rows)
    w_ref = np.asarray(models[ref].W, float)
    genes = np.asarray(models[ref].genes)
    factors = pd.DataFrame(
        {
            # the same factor counts (checked): one value per row of w_ref, in its order
            f"r_{k}": matched_correlation(w_ref, m.W)
            for k, m in enumerate(models)
            if k != ref
        }
    )
    factors.index = pd.Index(models[ref].factor_names, name="factor")
    factors["median"] = factors.median(axis=1)
    factors["min"] = factors.filter(like="r_").min(axis=1)
    factors["reproduced"] = factors["median"] >= threshold
    top = np.argsort(-w_ref, axis=1, kind="stable")[:, :n_top]
    factors["top_genes"] = [", ".join(genes[t]) for t in top]
    lo = float(np.nanmin(np.abs(losses)))
    summary = {
        "n_fits": len(models),
        "n_factors": int(w_ref.shape[0]),
        "objective_spread": float((np.nanmax(losses) - np.nanmin(losses)) / max(lo, 1e-12)),
        "objective_spread_deviance": float((np.nanmax(losses) - np.nanmin(losses)) / spans[ref]),
        "change_pearson_min": float(pairs["change_pearson"].min()),
        "change_pearson_median": float(pairs["change_pearson"].median()),
        "factor_r_median": float(np.median(np.concatenate(matched))),
        "reproduced_factors": int(factors["reproduced"].sum()),
        "reference": ref,
    }
    return SeedAgreement(fits=fits, pairs=pairs, factors=factors, summary=summary)
