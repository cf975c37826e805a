r"""Group statistics from a table of per-label means (pseudobulk), when the cells are not at hand.

The fit needs only :math:`w_c = \sum_{i\in c}\eta_i` and :math:`S_c = \sum_{i\in c}\eta_i X_i`
(see :mod:`pertspectra.stats._group`). With the mean :math:`\bar x_c` of label :math:`c` and its
cell count :math:`n_c`:

.. math::

    \text{weighting="label"}\;(\eta_i = 1/n_c):\quad w_c = 1,\quad S_c = \bar x_c;
    \qquad
    \text{weighting="uniform"}\;(\eta_i = 1):\quad w_c = n_c,\quad S_c = n_c\,\bar x_c .

Under the paper's :math:`1/|C|` weighting the means alone are sufficient and the objective on them
equals the objective on the cells exactly; uniform weighting needs the counts. Second moments
(``sum_squares``) cannot be recovered from means and are never written.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._keys import LAYER_SUM, LAYER_SUM_SQUARES, LAYER_WEIGHTED_SUM, N_CELLS, STATS_UNS, WEIGHT
from .._label_checks import no_control_message
from ..design import CONTROL_LABEL, canonical_labels, control_parser
from ._chunks import get_matrix
from ._validate import check_obs_key, check_screen

if TYPE_CHECKING:
    from anndata import AnnData

    from .._types import Weighting

logger = logging.getLogger(__name__)

_RESERVED_LAYERS = (LAYER_WEIGHTED_SUM, LAYER_SUM, LAYER_SUM_SQUARES)


def from_pseudobulk(
    adata: AnnData,
    *,
    perturbation_key: str,
    n_cells_key: str | None = None,
    layer: str | None = None,
    controls: Iterable[str] | None = None,
    separator: str = "+",
    exclude_labels: Iterable[str] = (),
    weighting: Weighting = "label",
    min_cells: int | None = None,
) -> AnnData:
    r"""Group statistics (as :func:`compute_group_stats` gives) from per-label mean expression.

    Each row of ``adata`` is one label's mean :math:`\bar x_c` (e.g. mean ``log1p(CP10k)``);
    with the counts :math:`n_c` (optional) the statistics of the fit are

    .. math::

        w_c = \sum_{i\in c}\eta_i,\quad S_c = \sum_{i\in c}\eta_i X_i = w_c\,\bar x_c,
        \qquad w_c = 1 \text{ (weighting="label", } \eta_i = 1/n_c),
        \quad w_c = n_c \text{ (weighting="uniform", } \eta_i = 1),

    so under ``weighting="label"`` (the paper) ``weight`` is 1 and ``weighted_sum`` is the mean,
    exactly, with or without counts, and the objective equals the one on the cells.

    Parameters
    ----------
    adata
        Labels x genes: one row per label, the mean expression in ``X`` (or ``layer``).
    perturbation_key
        ``adata.obs`` column of the labels (``"A"``, ``"A+B"``, ``"A+ctrl"``, controls). Labels are
        made canonical as for cells (``"B+A"`` is ``"A+B"``, ``"A+ctrl"`` is ``"A"``, control
        aliases are ``"ctrl"``), control first, then sorted.
    n_cells_key
        ``adata.obs`` column of the number of cells behind each mean (positive integers);
        ``None`` when unknown. Needed for ``weighting="uniform"``, for ``min_cells`` and to
        combine two rows of one canonical label.
    layer
        Layer holding the means instead of ``X``.
    controls
        Names of control labels (case-insensitive); ``"ctrl"`` is always one. ``None``: the
        built-in names (:data:`~pertspectra.design.DEFAULT_CONTROLS`). Names given explicitly
        replace the built-in ones and must each match some label.
    separator
        Separator of combined targets in a label.
    exclude_labels
        Raw labels to drop (neither perturbations nor controls).
    weighting
        ``"label"``: each cell weighs ``1/n_c`` (the paper); ``"uniform"``: 1 (needs counts).
    min_cells
        With counts: labels with fewer cells are dropped (``None``: keep all). Without counts it
        cannot apply: only ``None`` or a value <= 1 is accepted, and it is recorded as ``""``.

    Returns
    -------
    Perturbation-level AnnData like :func:`compute_group_stats`'s: ``obs_names`` canonical labels,
    ``obs["n_cells"]`` the counts (int) or NaN (float) when ``n_cells_key`` is ``None``,
    ``obs["weight"]``, ``X`` the means (float64), layers ``"weighted_sum"`` and, with counts only,
    ``"sum"`` (:math:`n_c\bar x_c`); ``"sum_squares"`` is never written (it cannot come from
    means). The other layers of ``adata`` (per-label tables such as half-split means) are kept,
    rows re-ordered alike (as float64). ``var`` is copied; ``varp["pertspectra_prior"]``, its
    provenance and the target types are carried over; ``uns["pertspectra_stats"]`` holds the
    settings as :func:`compute_group_stats` records them, plus ``pseudobulk=True``,
    ``n_cells_known`` and ``merged_labels`` (canonical labels combined from several rows).
    ``n_obs`` is the number of input rows; ``normalize``/``target_sum`` are ``""``.

    Raises
    ------
    KeyError
        If ``perturbation_key``, ``n_cells_key`` or ``layer`` is missing.
    ValueError
        On missing labels, no control row, NaN/inf/negative means (naming the label), counts that
        are missing, negative, zero or not integers, two rows of one canonical label without
        counts, ``weighting="uniform"`` or ``min_cells > 1`` without counts, unknown explicit
        controls, or duplicated gene names.

    Notes
    -----
    Two rows that canonicalize to one label (``"A+B"`` and ``"B+A"``) are combined as the
    count-weighted mean :math:`\sum_r n_r\bar x_r / \sum_r n_r` (X and every kept layer); a label
    seen in one row keeps its values exactly.

    Examples
    --------
    >>> import anndata as ad, numpy as np, pandas as pd
    >>> import pertspectra as ps
    >>> means = ad.AnnData(
    ...     np.array([[1.0, 2.0], [1.5, 0.5], [0.5, 3.0]]),
    ...     obs=pd.DataFrame({"label": ["NT", "B+A", "A"]}, index=["r0", "r1", "r2"]),
    ... )
    >>> stats = ps.stats.from_pseudobulk(means, perturbation_key="label")
    >>> list(stats.obs_names), stats.obs["weight"].tolist()
    (['ctrl', 'A', 'A+B'], [1.0, 1.0, 1.0])
    >>> stats.layers["weighted_sum"][2].tolist()
    [1.5, 0.5]
    """
    from anndata import AnnData

    from .._keys import KEYS

    check_screen(adata, perturbation_key=perturbation_key)
    if n_cells_key is not None:
        check_obs_key(adata, n_cells_key, option="n_cells_key")
    if weighting not in ("label", "uniform"):
        msg = f"weighting must be 'label' or 'uniform', got {weighting!r}"
        raise ValueError(msg)
    known = n_cells_key is not None
    if weighting == "uniform" and not known:
        msg = (
            "weighting='uniform' weighs every cell 1, so w_c = n_c and S_c = n_c * mean_c need "
            "the number of cells behind each mean: pass n_cells_key (the obs column of counts), "
            "or use weighting='label' (the paper's 1/|C|), which the means alone determine"
        )
        raise ValueError(msg)
    if min_cells is not None and min_cells > 1 and not known:
        msg = (
            f"min_cells={min_cells} needs the number of cells per label: pass n_cells_key, or "
            "leave min_cells=None (without counts no label can be filtered by size)"
        )
        raise ValueError(msg)

    exclude = [str(e) for e in exclude_labels]
    column = f"obs[{perturbation_key!r}]"
    labels = adata.obs[perturbation_key].astype(object)
    if labels.isna().any():
        n = int(labels.isna().sum())
        msg = (
            f"{n} row(s) have a missing (NaN) label in {column} (first: "
            f"{labels.index[labels.isna().to_numpy()][:3].tolist()}); give them a label or drop them"
        )
        raise ValueError(msg)
    raw = labels.to_numpy().astype(str)
    parser = control_parser(
        list(pd.unique(raw)), controls=controls, separator=separator, column=column
    )
    canon, summary = canonical_labels(
        labels, parser=parser, exclude_labels=exclude, min_cells=1, column=column
    )
    groups = list(canon.cat.categories)
    codes = canon.cat.codes.to_numpy()
    kept = np.flatnonzero(codes >= 0)

    what = f"layer {layer!r}" if layer else "X"
    x = _dense(get_matrix(adata, layer))
    _check_means(x[kept], raw[kept], what)
    counts = _counts(adata, n_cells_key, raw, kept) if known else None

    extra = {}
    for name in adata.layers:
        if name == layer:
            continue
        if name in _RESERVED_LAYERS:
            logger.warning("layer %r of the input is not kept: the name is reserved", name)
            continue
        extra[name] = _dense(adata.layers[name])
    means, extra, n_cells, merged = _combine(x, extra, codes, groups, counts, raw)

    dropped = pd.Series(dtype=int)
    if known and min_cells is not None:
        assert n_cells is not None
        small = n_cells < min_cells
        dropped = pd.Series(
            n_cells[small], index=[g for g, s in zip(groups, small, strict=True) if s]
        )
        if small.all():
            msg = f"no label has at least min_cells={min_cells} cells"
            raise ValueError(msg)
        if small[groups.index(CONTROL_LABEL)]:
            msg = no_control_message(
                parser,
                column=column,
                seen=pd.unique(raw[kept]),
                min_cells=min_cells,
                n_control=int(n_cells[groups.index(CONTROL_LABEL)]),
            )
            raise ValueError(msg)
        keep = ~small
        groups = [g for g, k in zip(groups, keep, strict=True) if k]
        means, n_cells = means[keep], n_cells[keep]
        extra = {k: v[keep] for k, v in extra.items()}
        merged = [m for m in merged if m in groups]

    n_groups = len(groups)
    if n_cells is None:
        weight = np.ones(n_groups)
        obs = pd.DataFrame({N_CELLS: np.full(n_groups, np.nan), WEIGHT: weight})
    else:
        weight = np.ones(n_groups) if weighting == "label" else n_cells.astype(np.float64)
        obs = pd.DataFrame({N_CELLS: n_cells, WEIGHT: weight})
    obs.index = pd.Index(groups, name="label")
    layers = {
        **extra,
        LAYER_WEIGHTED_SUM: means if weighting == "label" else weight[:, None] * means,
    }
    if n_cells is not None:
        layers[LAYER_SUM] = n_cells[:, None] * means
    out = AnnData(X=means.copy(), obs=obs, var=adata.var.copy(), layers=layers)

    if KEYS.prior in adata.varp:
        out.varp[KEYS.prior] = adata.varp[KEYS.prior]
        if KEYS.prior_info in adata.uns:
            out.uns[KEYS.prior_info] = adata.uns[KEYS.prior_info]
    if KEYS.target_types in adata.uns:
        out.uns[KEYS.target_types] = dict(adata.uns[KEYS.target_types])
    is_excl = np.isin(raw, exclude)
    out.uns[STATS_UNS] = {
        "perturbation_key": perturbation_key,
        "layer": "" if layer is None else layer,
        "min_cells": "" if min_cells is None or not known else int(min_cells),
        "weighting": weighting,
        "normalize": "",
        "target_sum": "",
        "n_obs": int(adata.n_obs),
        "separator": parser.separator,
        "controls": list(parser.controls),
        "exclude_labels": exclude,
        "dropped_labels": [str(k) for k in dropped.index],
        "dropped_n_cells": dropped.to_numpy().astype(int).tolist(),
        "excluded_n_cells": (int(_raw_counts(adata, n_cells_key)[is_excl].sum()) if known else ""),
        "pseudobulk": True,
        "n_cells_known": known,
        "n_cells_key": "" if n_cells_key is None else n_cells_key,
        "merged_labels": merged,
        **{k: list(v) for k, v in summary.findings.items()},
    }
    logger.info(
        "%d labels from %d pseudobulk rows (%d excluded, %d merged, %d below min_cells)",
        n_groups,
        adata.n_obs,
        int(is_excl.sum()),
        len(merged),
        len(dropped),
    )
    return out


def _dense(x: Any) -> np.ndarray:
    if hasattr(x, "to_memory"):  # backed sparse dataset
        x = x.to_memory()
    if sp.issparse(x):
        x = x.toarray()
    return np.asarray(x, dtype=np.float64)


def _check_means(x: np.ndarray, raw: np.ndarray, what: str) -> None:
    bad = ~np.isfinite(x)
    for mask, kind in ((bad.any(axis=1), "NaN or infinite"), ((x < 0).any(axis=1), "negative")):
        if mask.any():
            labels = [str(lab) for lab in dict.fromkeys(raw[mask])]
            msg = (
                f"{what} contains {kind} values for label(s) {labels[:5]}; per-label means "
                "must be finite and non-negative (exclude those labels with exclude_labels)"
            )
            raise ValueError(msg)


def _raw_counts(adata: AnnData, key: str | None) -> np.ndarray:
    return pd.to_numeric(adata.obs[key], errors="coerce").to_numpy(dtype=np.float64)


def _counts(adata: AnnData, key: str | None, raw: np.ndarray, kept: np.ndarray) -> np.ndarray:
    values = _raw_counts(adata, key)[kept]
    labels = raw[kept]
    checks = (
        (~np.isfinite(values), "missing or not a number"),
        (values < 0, "negative"),
        (np.isfinite(values) & (values != np.round(values)), "not an integer"),
        (values == 0, "zero"),
    )
    for mask, kind in checks:
        if mask.any():
            shown = [
                f"{lab}={v:g}" for lab, v in zip(labels[mask][:5], values[mask][:5], strict=True)
            ]
            msg = (
                f"obs[{key!r}] must hold positive integer cell counts; {kind} for label(s) {shown}"
            )
            raise ValueError(msg)
    return values.astype(np.int64)


def _combine(
    x: np.ndarray,
    extra: dict[str, np.ndarray],
    codes: np.ndarray,
    groups: list[str],
    counts: np.ndarray | None,
    raw: np.ndarray,
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray | None, list[str]]:
    """One row per group: a single row as it is, several as their count-weighted mean."""
    kept = np.flatnonzero(codes >= 0)
    kcodes = codes[kept]
    rows_of = [kept[kcodes == g] for g in range(len(groups))]
    merged = [groups[g] for g, rows in enumerate(rows_of) if rows.size > 1]
    if merged and counts is None:
        shown = "; ".join(
            f"{groups[g]!r} from rows {[str(r) for r in raw[rows]]}"
            for g, rows in enumerate(rows_of)
            if rows.size > 1
        )
        msg = (
            f"several rows canonicalize to one label ({shown}); without n_cells_key they cannot "
            "be combined (a count-weighted mean needs the counts): pass n_cells_key, or drop or "
            "exclude the duplicates"
        )
        raise ValueError(msg)
    n_row = np.zeros(len(codes), dtype=np.int64)
    if counts is not None:
        n_row[kept] = counts

    def pick(table: np.ndarray) -> np.ndarray:
        out = np.empty((len(groups), table.shape[1]))
        for g, rows in enumerate(rows_of):
            if rows.size == 1:
                out[g] = table[rows[0]]
            else:
                n = n_row[rows].astype(np.float64)
                out[g] = (n[:, None] * table[rows]).sum(axis=0) / n.sum()
        return out

    n_cells = None if counts is None else np.array([n_row[r].sum() for r in rows_of])
    return pick(x), {k: pick(v) for k, v in extra.items()}, n_cells, merged
