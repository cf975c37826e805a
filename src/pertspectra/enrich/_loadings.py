r"""What a program is in gene space, and how much each perturbation moves it.

The fitted ``W`` has each *gene* on the simplex over factors, so a factor's raw row mixes
genes of very different expression and reading it directly misleads. As the authors (and
Spectra) do, a program's gene loadings are the row of ``W`` scaled by the gene scaling and
renormalized over genes:

.. math::

    \tilde W_{kj} = \frac{W_{kj} (\nu_j + \delta)}{\sum_{j'} W_{kj'} (\nu_{j'} + \delta)},

the share of the program's expected expression carried by gene ``j`` (each row sums to 1).
The program's *size* ``s_k = sum_j W_kj (nu_j + delta)`` is the expected expression it adds
per unit of activity, so ``a_k s_k`` for an activity ``a_k = (h P)_k`` is expression summed
over genes.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from ..design import CONTROL_LABEL
from ..model import FittedModel


def _scaled(model: FittedModel) -> np.ndarray:
    return model.W * (np.asarray(model.gene_scale, dtype=np.float64) + model.config.delta)[None, :]


def program_sizes(model: FittedModel) -> pd.Series:
    """Expected expression (summed over genes) each program adds per unit of activity.

    Returns
    -------
    Series indexed by program (``factor_0``, ...): ``sum_j W_kj (nu_j + delta)``.
    """
    return pd.Series(
        _scaled(model).sum(axis=1), index=pd.Index(model.factor_names, name="program"), name="size"
    )


def program_loadings(model: FittedModel) -> pd.DataFrame:
    """Programs' gene loadings: ``W`` scaled by the gene scaling, each row renormalized.

    Parameters
    ----------
    model
        A fitted model.

    Returns
    -------
    Programs x genes DataFrame whose rows sum to 1 (see the module docstring). A program with
    no weight at all (an all-zero row) stays all zero.
    """
    scaled = _scaled(model)
    total = scaled.sum(axis=1, keepdims=True)
    out = np.divide(scaled, total, out=np.zeros_like(scaled), where=total > 0)
    return pd.DataFrame(
        out,
        index=pd.Index(model.factor_names, name="program"),
        columns=pd.Index(model.genes, name="gene"),
    )


def single_labels(model: FittedModel) -> list[str]:
    """Labels of the model made of exactly one perturbation (control excluded), in design order."""
    design = model.design
    perts = set(design.perturbations)
    out = []
    for label, cols in design.labels.items():
        hit = [c for c in cols if c in perts]
        if len(hit) == 1 and label != CONTROL_LABEL:
            out.append(label)
    order = {c: i for i, c in enumerate(design.perturbations)}
    return sorted(out, key=lambda lab: order[next(c for c in design.labels[lab] if c in perts)])


def program_activity(
    model: FittedModel, labels: Iterable[object] | None = None, *, reference: str = CONTROL_LABEL
) -> pd.DataFrame:
    """Each label's change of program activity from ``reference``, in expression units.

    The change ``(h_label P - h_reference P)_k`` times the program's size (see
    :func:`program_sizes`): the expected expression, summed over genes, that the label adds
    to (positive) or removes from (negative) program ``k``. Weighting by size keeps programs
    that carry almost no expression from ranking first.

    Parameters
    ----------
    model
        A fitted model.
    labels
        Labels to score (any seen label or combination of seen perturbations); default every
        single perturbation.
    reference
        The label changes are measured from.

    Returns
    -------
    Labels x programs DataFrame.
    """
    labels = single_labels(model) if labels is None else [str(x) for x in labels]
    rows = model.design.matrix(labels) @ model.P
    ref = model.design.matrix([reference]) @ model.P
    change = (rows - ref) * program_sizes(model).to_numpy()[None, :]
    return pd.DataFrame(
        change,
        index=pd.Index(labels, name="label"),
        columns=pd.Index(model.factor_names, name="program"),
    )


def log_ratio_scores(model: FittedModel, labels: Iterable[str]) -> pd.DataFrame:
    """The paper's per-factor perturbation score ``|log P[pert] - log P[ctrl]|``.

    Under the ``"paper"`` parametrization this is computed on the rows of ``P`` exactly as the
    authors do. Under ``"effects"`` the perturbation rows are signed deviations, so the log
    ratio is taken of the activities ``h P`` of the label and of control (clamped below at the
    model's floor): the same quantity, a log fold change of the program's activity.
    """
    labels = [str(x) for x in labels]
    design = model.design
    perts = set(design.perturbations)
    if model.config.parametrization == "paper":
        cols = []
        for lab in labels:
            hit = [c for c in design.columns_of(lab) if c in perts]
            if len(hit) != 1:
                msg = f"{lab!r} is not a single perturbation"
                raise ValueError(msg)
            cols.append(design.columns.index(hit[0]))
        tiny = np.finfo(np.float64).tiny
        pert = np.log(np.maximum(model.P[cols], tiny))
        ctrl = np.log(np.maximum(model.P[design.columns.index("ctrl")], tiny))
        score = np.abs(pert - ctrl[None, :])
    else:
        floor = model.config.floor
        rows = np.maximum(design.matrix(labels) @ model.P, floor)
        ref = np.maximum(design.matrix([CONTROL_LABEL]) @ model.P, floor)
        score = np.abs(np.log(rows) - np.log(ref))
    return pd.DataFrame(
        score,
        index=pd.Index(labels, name="label"),
        columns=pd.Index(model.factor_names, name="program"),
    )
