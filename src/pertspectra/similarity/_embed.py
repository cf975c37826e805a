"""Perturbation embeddings: one row per single perturbation, the space similarities are taken in.

Model-based kinds (a fitted model with design rows ``h`` and programs ``P``, ``W``):

- ``"P"``: the paper's embedding, the perturbation's own row of ``P`` (factors);
- ``"program_change"``: ``(h_a P - h_ctrl P)_k s_k``, the change of each program's activity
  from control in expression units (:func:`pertspectra.enrich.program_activity`);
- ``"gene_change"``: ``mu_a - mu_ctrl``, the predicted change of every gene
  (:func:`pertspectra.predict.predict_change`).

Data baselines (a perturbation-level AnnData of mean expression ``x_a``, see
:func:`pertspectra.stats.compute_group_stats`):

- ``"data_change"``: ``x_a - x_ctrl``, the observed change from control;
- ``"data_pca"``: the principal components of the ``data_change`` matrix (centred over
  perturbations), ``min(50, n_labels - 1, n_genes)`` of them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from ..design import CONTROL_LABEL, LabelParser
from ..enrich import program_activity, single_labels
from ..predict import predict_change

if TYPE_CHECKING:
    from anndata import AnnData

    from ..model import FittedModel

logger = logging.getLogger(__name__)

EmbeddingKind = Literal["P", "program_change", "gene_change", "data_change", "data_pca"]
#: Every embedding kind, model-based first.
EMBEDDINGS: tuple[str, ...] = ("P", "program_change", "gene_change", "data_change", "data_pca")
#: The kinds computed from data alone.
DATA_EMBEDDINGS: tuple[str, ...] = ("data_change", "data_pca")
#: Most principal components kept by ``"data_pca"``.
MAX_COMPONENTS = 50


def _check_kind(kind: str, allowed: tuple[str, ...]) -> None:
    if kind not in allowed:
        msg = f"unknown embedding kind {kind!r}; choose one of {', '.join(allowed)}"
        raise ValueError(msg)


def _frame(
    values: np.ndarray, labels: list[str], columns: Iterable[str], name: str
) -> pd.DataFrame:
    return pd.DataFrame(
        np.asarray(values, dtype=np.float64),
        index=pd.Index(labels, name="label"),
        columns=pd.Index(list(columns), name=name),
    )


def embedding(
    model: FittedModel, *, kind: EmbeddingKind = "P", data: AnnData | None = None
) -> pd.DataFrame:
    """Embed each single perturbation of a fitted model (control excluded).

    Parameters
    ----------
    model
        A fitted model (:func:`pertspectra.train.fit`).
    kind
        ``"P"`` (the paper's: the perturbation's row of ``P``), ``"program_change"``,
        ``"gene_change"``, ``"data_change"`` or ``"data_pca"`` (see the module docstring).
    data
        Perturbation-level AnnData (``obs_names`` canonical labels with ``"ctrl"``, ``X`` mean
        expression), needed by the ``data_*`` kinds; cut to the model's genes.

    Returns
    -------
    Labels x features DataFrame (index ``label``): the single perturbations of
    :func:`pertspectra.enrich.single_labels`, in design order (for the ``data_*`` kinds only
    those also in ``data``). Columns are factors (``program``), genes (``gene``) or principal
    components (``component``).

    Raises
    ------
    ValueError
        For an unknown ``kind``, a ``data_*`` kind without ``data``, ``data`` without a control
        row, lacking genes of the model or sharing no perturbation with it.

    Examples
    --------
    >>> import pertspectra as ps
    >>> from pertspectra.similarity import embedding
    >>> stats = ps.stats.compute_group_stats(
    ...     ps.datasets.toy(seed=0), perturbation_key="perturbation", progress=False
    ... )
    >>> model = ps.train.fit(stats, n_factors=4, max_epochs=50, progress=False)
    >>> embedding(model, kind="P").shape
    (6, 4)
    """
    _check_kind(kind, EMBEDDINGS)
    labels = single_labels(model)
    if kind in DATA_EMBEDDINGS:
        if data is None:
            msg = f"embedding kind {kind!r} needs data= (a perturbation-level AnnData)"
            raise ValueError(msg)
        model.check_genes(data.var_names, source="data")
        present = set(map(str, data.obs_names))
        shared = [lab for lab in labels if lab in present]
        if not shared:
            msg = "data shares no single perturbation label with the model"
            raise ValueError(msg)
        if len(shared) < len(labels):
            logger.warning(
                "%d of %d model perturbations are not in data: %s",
                len(labels) - len(shared),
                len(labels),
                sorted(set(labels) - set(shared))[:10],
            )
        data_kind: Literal["data_change", "data_pca"] = (
            "data_pca" if kind == "data_pca" else "data_change"
        )
        return data_embedding(data, kind=data_kind, labels=shared, genes=model.genes)
    if kind == "P":
        design = model.design
        perts = set(design.perturbations)
        rows = [
            design.columns.index(next(c for c in design.labels[lab] if c in perts))
            for lab in labels
        ]
        return _frame(model.P[rows], labels, model.factor_names, "program")
    if kind == "program_change":
        return program_activity(model, labels)
    change = predict_change(model, labels)
    change.columns.name = "gene"
    change.index.name = "label"
    return change


def _single_data_labels(data: AnnData) -> list[str]:
    info = data.uns.get("pertspectra_stats", {})
    separator = str(info.get("separator", "+")) if isinstance(info, dict) else "+"
    parser = LabelParser(separator=separator or "+")
    out = []
    for lab in map(str, data.obs_names):
        if lab == CONTROL_LABEL:
            continue
        if len(parser.tokens(lab)) == 1:
            out.append(lab)
    return out


def _dense_rows(data: AnnData, rows: list[int], cols: np.ndarray) -> np.ndarray:
    x = data.X[rows]
    x = x.toarray() if hasattr(x, "toarray") else np.asarray(x)
    return np.asarray(x, dtype=np.float64)[:, cols]


def data_embedding(
    adata: AnnData,
    *,
    kind: Literal["data_change", "data_pca"] = "data_change",
    labels: Iterable[str] | None = None,
    genes: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Embed perturbations by their observed change from control (no model needed).

    Parameters
    ----------
    adata
        Perturbation-level AnnData, as made by :func:`pertspectra.stats.compute_group_stats` or
        :func:`pertspectra.stats.from_pseudobulk`: ``obs_names`` canonical labels including
        ``"ctrl"``, ``X`` the mean expression of each label.
    kind
        ``"data_change"`` (``x_a - x_ctrl`` per gene) or ``"data_pca"`` (its principal
        components, ``svd_solver="full"``, ``min(50, n_labels - 1, n_genes)`` of them).
    labels
        Labels to embed, all in ``data``; default every single-perturbation label of ``data``
        (one target, control excluded), in ``data`` order.
    genes
        Keep these genes (those missing from ``data`` are dropped with a warning); default all.

    Returns
    -------
    Labels x genes (``gene``) or labels x components (``component``: ``PC1``, ...) DataFrame,
    index ``label``.

    Raises
    ------
    ValueError
        For an unknown ``kind``, no ``"ctrl"`` row, unknown or control ``labels``, no genes left,
        or fewer than two labels for ``"data_pca"``.
    """
    _check_kind(kind, DATA_EMBEDDINGS)
    names = [str(x) for x in adata.obs_names]
    index = {lab: i for i, lab in enumerate(names)}
    if len(index) != len(names):
        msg = "data has duplicated obs_names; expected one row per canonical label"
        raise ValueError(msg)
    if CONTROL_LABEL not in index:
        msg = f"data has no control row {CONTROL_LABEL!r} in obs_names"
        raise ValueError(msg)
    if labels is None:
        labels = _single_data_labels(adata)
    else:
        labels = [str(x) for x in labels]
        missing = [lab for lab in labels if lab not in index]
        if missing:
            msg = f"labels not in data.obs_names: {missing[:10]}"
            raise ValueError(msg)
        if CONTROL_LABEL in labels:
            msg = f"labels include the control {CONTROL_LABEL!r}; it is the reference"
            raise ValueError(msg)
    if not labels:
        msg = "no perturbation labels to embed"
        raise ValueError(msg)
    var = [str(g) for g in adata.var_names]
    if genes is None:
        cols = np.arange(len(var))
    else:
        where = {g: j for j, g in enumerate(var)}
        wanted = [str(g) for g in genes]
        kept = [g for g in wanted if g in where]
        if len(kept) < len(wanted):
            logger.warning("%d of %d genes are not in data", len(wanted) - len(kept), len(wanted))
        cols = np.array([where[g] for g in kept], dtype=int)
    if cols.size == 0:
        msg = "no genes left to embed (none of the requested genes is in data)"
        raise ValueError(msg)
    x = _dense_rows(adata, [index[lab] for lab in labels], cols)
    ctrl = _dense_rows(adata, [index[CONTROL_LABEL]], cols)
    change = x - ctrl
    if not np.all(np.isfinite(change)):
        msg = "data has non-finite mean expression"
        raise ValueError(msg)
    gene_names = [var[j] for j in cols]
    if kind == "data_change":
        return _frame(change, labels, gene_names, "gene")
    n_components = min(MAX_COMPONENTS, len(labels) - 1, len(gene_names))
    if n_components < 1:
        msg = f"'data_pca' needs at least two labels (got {len(labels)})"
        raise ValueError(msg)
    from sklearn.decomposition import PCA

    scores = PCA(n_components=n_components, svd_solver="full").fit_transform(change)
    return _frame(scores, labels, [f"PC{i + 1}" for i in range(n_components)], "component")
