"""Groups of a screen run under several conditions: one group per (label, condition).

With ``condition_key``, :func:`~pertspectra.stats.compute_group_stats` sums the cells of each
(label, condition) pair in the same single pass, and each cell weighs
``1 / |cells with its label and condition|`` (the authors' per-condition weighting). A pair with
fewer than ``min_cells`` cells is dropped (the label is then *missing* in that condition: logged
and recorded in ``uns["pertspectra_stats"]["missing_in_condition"]``); the control must be
present in every condition, since each condition's ``basal`` level is fitted from it.

The perturbation-level AnnData then has one row per pair, named ``"<condition>:<label>"``, with
``obs["label"]`` and ``obs["condition"]`` (see :data:`LABEL`, :data:`CONDITION`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..design import CONTROL_LABEL
from ._validate import check_obs_key

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)

#: ``obs`` columns of a per-condition perturbation-level AnnData.
LABEL = "label"
CONDITION = "condition"


@dataclass
class ConditionGroups:
    """Each cell's group and the groups' labels, conditions and cell counts."""

    codes: np.ndarray
    obs: pd.DataFrame
    conditions: list[str]
    missing: dict[str, list[str]]


def group_name(label: str, condition: str) -> str:
    """Row name of the (label, condition) group."""
    return f"{condition}:{label}"


def condition_groups(
    adata: AnnData,
    labels: pd.Series,
    *,
    condition_key: str,
    perturbation_key: str,
    min_cells: int,
) -> ConditionGroups:
    """Group cells by (canonical label, condition).

    Parameters
    ----------
    adata
        The screen (only ``obs`` is read).
    labels
        Canonical labels per cell (categorical, NaN for dropped cells), control first.
    condition_key
        ``obs`` column of conditions.
    perturbation_key
        ``obs`` column of the labels (must differ from ``condition_key``).
    min_cells
        Pairs with fewer cells are dropped.

    Raises
    ------
    KeyError
        If ``condition_key`` is not an ``obs`` column.
    ValueError
        If the two keys are the same column, a condition is missing or empty, or a condition
        has fewer than ``min_cells`` control cells.
    """
    if condition_key == perturbation_key:
        msg = (
            f"condition_key and perturbation_key are the same column ({condition_key!r}); the "
            "conditions (cell line, treatment, ...) must be a column of their own"
        )
        raise ValueError(msg)
    check_obs_key(adata, condition_key, option="condition_key")
    raw = adata.obs[condition_key]
    if isinstance(raw.dtype, pd.CategoricalDtype):
        raw = raw.cat.remove_unused_categories()
        order = [str(c) for c in raw.cat.categories]
    else:
        order = sorted({str(v) for v in raw.dropna().unique()})
    cond = raw.astype(object).where(raw.notna(), None).to_numpy()
    bad = np.flatnonzero([c is None or str(c).strip() == "" for c in cond])
    if bad.size:
        msg = (
            f"obs[{condition_key!r}] is missing or empty for {bad.size} cell(s) (first: "
            f"{adata.obs_names[bad[0]]!r}); give every cell a condition or subset the data"
        )
        raise ValueError(msg)
    order = [c for c in order if c.strip()]
    if len(order) < 2:
        logger.warning(
            "obs[%r] holds one condition (%r): the condition model then equals the plain one",
            condition_key,
            order[0] if order else "",
        )
    cond_code = pd.Categorical([str(c) for c in cond], categories=order).codes
    lab_code = labels.cat.codes.to_numpy()
    lab_names = [str(x) for x in labels.cat.categories]
    kept = lab_code >= 0
    counts = np.zeros((len(lab_names), len(order)), dtype=np.int64)
    np.add.at(counts, (lab_code[kept], cond_code[kept]), 1)
    ctrl = lab_names.index(CONTROL_LABEL)
    short = [c for k, c in enumerate(order) if counts[ctrl, k] < min_cells]
    if short:
        shown = ", ".join(f"{c} ({counts[ctrl, order.index(c)]})" for c in short)
        msg = (
            f"condition(s) with fewer than min_cells={min_cells} control cells: {shown}; each "
            "condition needs its own control cells (lower min_cells or drop the condition)"
        )
        raise ValueError(msg)
    group_of = np.full(counts.shape, -1, dtype=np.int64)
    rows: list[tuple[str, str, str, int]] = []
    missing: dict[str, list[str]] = {}
    for k, c in enumerate(order):
        gone = []
        for i, lab in enumerate(lab_names):
            if counts[i, k] >= min_cells:
                group_of[i, k] = len(rows)
                rows.append((group_name(lab, c), lab, c, int(counts[i, k])))
            else:
                gone.append(f"{lab} ({counts[i, k]})")
        if gone:
            missing[c] = gone
            logger.warning(
                "condition %r lacks %d label(s) (fewer than min_cells=%d cells): %s%s; they are "
                "not predicted in this condition",
                c,
                len(gone),
                min_cells,
                ", ".join(gone[:10]),
                "" if len(gone) <= 10 else f" and {len(gone) - 10} more",
            )
    codes = np.full(lab_code.shape, -1, dtype=np.int64)
    codes[kept] = group_of[lab_code[kept], cond_code[kept]]
    obs = pd.DataFrame(
        [r[1:] for r in rows],
        columns=[LABEL, CONDITION, "n_cells"],
        index=pd.Index([r[0] for r in rows], name="group"),
    )
    return ConditionGroups(codes=codes, obs=obs, conditions=order, missing=missing)
