"""Similarity of perturbations in each condition of a model fitted under several conditions.

Each condition of a :class:`~pertspectra.model.ConditionModel` is a one-condition model
(:meth:`~pertspectra.model.ConditionModel.condition`) holding only the labels fitted there, so
every embedding, similarity, cluster and benchmark of :mod:`pertspectra.similarity` is made per
condition with the one-condition functions; tables are stacked with a ``condition`` column
(:func:`stack_conditions`, undone by :func:`split_conditions`).

Across conditions, :func:`condition_agreement` asks whether a perturbation does the same in two
conditions: the similarity of its embedding in one condition to its embedding in the other,
beside its mean similarity to the other perturbations there (what an unrelated perturbation
gives). Only features both conditions have are compared: genes for ``gene_change`` and
``data_change``, the shared programs for ``P`` and ``program_change``; ``data_pca`` has no
common axes (one PCA per condition) and is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._distance import Metric, similarity_matrix
from ._embed import EmbeddingKind, embedding

if TYPE_CHECKING:
    from anndata import AnnData

    from ..model import ConditionModel

logger = logging.getLogger(__name__)

#: Name of the column (and index level) that says which condition a row belongs to.
CONDITION = "condition"
#: Columns of :func:`condition_agreement`.
AGREEMENT_COLUMNS = [
    "label", "condition1", "condition2", "similarity", "others", "n_others", "n_features",
]  # fmt: skip


def condition_data(adata: AnnData) -> dict[str, AnnData]:
    """Split per-(label, condition) statistics into one perturbation-level AnnData per condition.

    Parameters
    ----------
    adata
        :func:`~pertspectra.stats.compute_group_stats` output with ``condition_key`` (rows
        ``"<condition>:<label>"`` with ``obs["label"]`` and ``obs["condition"]``).

    Returns
    -------
    Condition -> AnnData whose ``obs_names`` are the labels (``"ctrl"`` included), in the
    order of ``uns["pertspectra_stats"]["conditions"]``; usable as ``data=`` of
    :func:`~pertspectra.similarity.embedding` for that condition's view.

    Raises
    ------
    ValueError
        If ``adata`` was not computed with ``condition_key``.
    """
    obs = adata.obs
    if CONDITION not in obs or "label" not in obs:
        msg = (
            "data holds one row per label, not per (label, condition): compute its statistics "
            "with condition_key= (CLI: the condition model's condition column must be in --data)"
        )
        raise ValueError(msg)
    info = adata.uns.get("pertspectra_stats", {})
    order = [str(c) for c in info.get("conditions", [])] or list(
        dict.fromkeys(map(str, obs[CONDITION]))
    )
    out = {}
    cond = obs[CONDITION].astype(str).to_numpy()
    for c in order:
        part = adata[cond == c].copy()
        part.obs_names = part.obs["label"].astype(str).to_numpy()
        out[c] = part
    return out


def condition_embeddings(
    model: ConditionModel,
    *,
    kind: EmbeddingKind = "P",
    data: Mapping[str, AnnData] | None = None,
) -> dict[str, pd.DataFrame]:
    """:func:`~pertspectra.similarity.embedding` of each condition's view.

    Parameters
    ----------
    model
        A model fitted under several conditions.
    kind
        As :func:`~pertspectra.similarity.embedding`. ``"P"`` and ``"program_change"`` have
        one column per program of the condition (``shared_k``, then ``<condition>_k``).
    data
        Condition -> perturbation-level AnnData (:func:`condition_data`), for the ``data_*``
        kinds.

    Returns
    -------
    Condition -> labels x features DataFrame (each condition's single perturbations).
    """
    out = {}
    for c in model.conditions:
        part = None
        if data is not None:
            if c not in data:
                msg = f"data has no rows for condition {c!r} (it has: {sorted(data)})"
                raise ValueError(msg)
            part = data[c]
        out[c] = embedding(model.condition(c), kind=kind, data=part)
    return out


def stack_conditions(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Stack per-condition tables under a first index level ``condition``.

    Columns are the union of the tables' columns in order of appearance, so a square
    similarity matrix becomes (condition, label) x labels with NaN for labels not fitted in a
    condition.
    """
    if not tables:
        msg = "no tables to stack"
        raise ValueError(msg)
    frames = list(tables.values())
    out = pd.concat(frames, keys=list(tables), names=[CONDITION], sort=False)
    columns = list(dict.fromkeys(col for t in frames for col in t.columns))
    return out.reindex(columns=columns)


def split_conditions(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Undo :func:`stack_conditions` (also on a table read back from CSV).

    ``table`` has a ``condition`` index level or column; columns and rows that are NaN
    throughout a condition are dropped, so each stacked similarity matrix comes back square.
    """
    if CONDITION not in table.index.names:
        if CONDITION not in table.columns:
            msg = f"table has no {CONDITION!r} column or index level"
            raise ValueError(msg)
        table = table.set_index(CONDITION, append=True)
    out = {}
    for c in dict.fromkeys(table.index.get_level_values(CONDITION)):
        part = table.xs(c, level=CONDITION)
        numeric = part.select_dtypes("number")
        drop = [col for col in numeric if numeric[col].isna().all()]
        part = part.drop(columns=drop)
        if set(part.index) == set(part.columns):  # a stacked square matrix: square again
            part = part[list(part.index)]
        out[str(c)] = part
    return out


def condition_agreement(
    embeddings: Mapping[str, pd.DataFrame], *, metric: Metric = "correlation"
) -> pd.DataFrame:
    """Does a perturbation do the same in two conditions? (see the module docstring)

    Parameters
    ----------
    embeddings
        Condition -> labels x features (:func:`condition_embeddings`).
    metric
        As :func:`~pertspectra.similarity.similarity_matrix`.

    Returns
    -------
    DataFrame with :data:`AGREEMENT_COLUMNS`, one row per label and pair of conditions that
    both fitted it: ``similarity`` of the label's two embeddings, ``others`` the mean
    similarity of its embedding in ``condition1`` to the other labels' in ``condition2`` and
    vice versa (``n_others`` of them), ``n_features`` the features compared. Sorted by label
    (first appearance) and condition pair.

    Raises
    ------
    ValueError
        If two conditions share no feature, or for ``data_pca`` embeddings (components of
        separate PCAs are not comparable).
    """
    names = list(embeddings)
    rows = []
    for c1, c2 in combinations(names, 2):
        a, b = embeddings[c1], embeddings[c2]
        if a.columns.name == "component" or b.columns.name == "component":
            msg = "condition_agreement cannot compare principal components of separate PCAs; use data_change"
            raise ValueError(msg)
        common = [col for col in a.columns if col in set(b.columns)]
        if not common:
            msg = f"conditions {c1!r} and {c2!r} share no feature to compare"
            raise ValueError(msg)
        labels = [lab for lab in a.index if lab in set(b.index)]
        if not labels:
            continue
        stacked = pd.concat([a.loc[labels, common], b.loc[labels, common]])
        stacked.index = [f"1:{lab}" for lab in labels] + [f"2:{lab}" for lab in labels]
        s = similarity_matrix(stacked, metric=metric).to_numpy()
        n = len(labels)
        cross = s[:n, n:]
        for i, lab in enumerate(labels):
            off = np.r_[np.delete(cross[i], i), np.delete(cross[:, i], i)]
            rows.append(
                {
                    "label": lab,
                    "condition1": c1,
                    "condition2": c2,
                    "similarity": float(cross[i, i]),
                    "others": float(np.nanmean(off)) if np.isfinite(off).any() else np.nan,
                    "n_others": n - 1,
                    "n_features": len(common),
                }
            )
    out = pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)
    order = {
        lab: i
        for i, lab in enumerate(dict.fromkeys(x for e in embeddings.values() for x in e.index))
    }
    out = out.sort_values(["label"], key=lambda s: s.map(order), kind="stable")
    return out.reset_index(drop=True)
