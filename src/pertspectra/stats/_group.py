r"""Per-label sufficient statistics: the only input the fit needs.

Every cell of a label shares one predicted mean :math:`\mu_c`, so the weighted Poisson loss
regroups exactly,

.. math::

    \sum_i \eta_i \sum_j (\mu_{c(i)j} - X_{ij}\log\mu_{c(i)j})
      = \sum_c \sum_j (w_c\,\mu_{cj} - S_{cj}\log\mu_{cj}),
    \quad S_c = \sum_{i\in c}\eta_i X_i,\; w_c = \sum_{i\in c}\eta_i .

:func:`compute_group_stats` makes one pass over the cells in row chunks and returns a
perturbation-level AnnData (obs = canonical labels) holding ``n_cells``, ``weight`` (:math:`w_c`),
``X`` = the mean, and the layers ``weighted_sum`` (:math:`S_c`), ``sum`` and ``sum_squares``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._keys import (
    LAYER_SUM,
    LAYER_SUM_SQUARES,
    LAYER_WEIGHTED_SUM,
    N_CELLS,
    STATS_UNS,
    WEIGHT,
)
from .._utils import progress_bar
from ..design import LabelParser, canonical_labels, control_parser
from ._chunks import (
    accumulate,
    check_values,
    get_matrix,
    is_dask,
    iter_row_chunks,
    log1p_normalize,
    looks_like_counts,
)
from ._validate import check_screen

if TYPE_CHECKING:
    from anndata import AnnData

    from .._types import Weighting

logger = logging.getLogger(__name__)


class CountsError(ValueError):
    """Raised when raw counts are given where log-normalized data is expected."""


def compute_group_stats(
    adata: AnnData,
    *,
    perturbation_key: str,
    layer: str | None = None,
    controls: Iterable[str] | None = None,
    separator: str = "+",
    exclude_labels: Iterable[str] = (),
    min_cells: int = 50,
    weighting: Weighting = "label",
    condition_key: str | None = None,
    normalize: str | None = None,
    target_sum: float = 1e4,
    allow_counts: bool = False,
    chunk_size: int = 10_000,
    progress: bool = True,
) -> AnnData:
    """Per-label statistics of a Perturb-seq AnnData in one streaming pass.

    Parameters
    ----------
    adata
        Cells x genes; in memory (dense or sparse), backed (``read_h5ad(..., backed="r")``), or
        with a Dask array as ``X``/layer.
    perturbation_key
        ``adata.obs`` column of perturbation labels (``"A"``, ``"A+B"``, ``"A+ctrl"``, controls).
    layer
        Layer to read instead of ``X``.
    controls
        Names of control labels (case-insensitive); ``"ctrl"`` is always one. ``None``: the
        built-in names (:data:`~pertspectra.design.DEFAULT_CONTROLS`). Names given explicitly
        replace the built-in ones and must each match some cell's label (CLI: ``--control``).
    separator
        Separator of combined targets in a label.
    exclude_labels
        Labels that are neither perturbations nor controls (e.g. ``"none_detected"``).
    min_cells
        Labels with fewer cells are dropped (the authors use 50).
    weighting
        ``"label"``: each cell weighs ``1/|cells with its label|`` (the paper); ``"uniform"``: 1.
    condition_key
        ``obs`` column of conditions (cell line, treatment, ...): one group per (label,
        condition) pair in the same pass, each cell weighing ``1/|cells with its label and
        condition|``; pairs below ``min_cells`` are dropped and reported (see
        :mod:`pertspectra.stats._conditions`). ``None``: one group per label.
    normalize
        ``None`` (data already log-normalized) or ``"log1p"``: per cell, scale to ``target_sum``
        total counts, then ``log1p`` (the authors' preprocessing), applied chunk by chunk.
    target_sum
        Total counts per cell for ``normalize="log1p"``.
    allow_counts
        Accept values that look like raw counts without normalizing them.
    chunk_size
        Cells per chunk; peak memory is O(labels x genes + chunk_size x genes).
    progress
        Show a progress bar.

    Returns
    -------
    Perturbation-level AnnData: ``obs_names`` canonical labels (control first, named ``"ctrl"``),
    ``obs["n_cells"]``, ``obs["weight"]``, ``X`` the mean expression (float64), layers
    ``"weighted_sum"``, ``"sum"``, ``"sum_squares"``; ``var`` copied from ``adata``;
    ``varp["pertspectra_prior"]`` carried over when present; ``uns["pertspectra_stats"]`` the
    settings, what was dropped (``dropped_labels``, ``dropped_n_cells``: labels below
    ``min_cells`` and their cells, also logged as one line) and what was warned about
    (``no_guide_labels``, ``combinations_without_singles``, ``never_alone``). With
    ``condition_key``: one row per (label, condition) named ``"<condition>:<label>"``, with
    ``obs["label"]`` and ``obs["condition"]``, and ``uns["pertspectra_stats"]`` also holds
    ``condition_key``, ``conditions`` and ``missing_in_condition`` (condition -> labels
    dropped there, with their cell counts).

    Raises
    ------
    KeyError
        If ``perturbation_key`` or ``layer`` is missing (naming the columns or layers present).
    ValueError
        Before the pass over the values: on missing, empty or whitespace-variant labels, an
        unknown explicit control, no control cells, empty or duplicated gene names, or an option
        out of range. During the pass: on NaN/inf/negative values (naming how many, the first
        cell and gene), or raw counts without ``normalize``/``allow_counts``
        (:class:`CountsError`, checked on the first chunk).

    Warns
    -----
    Logged (``logging``): labels that look like cells without a guide (``none_detected``,
    ``unassigned``, ``multiplet``, ...) fitted as perturbations, ``exclude_labels`` matching no
    label, labels differing only in case, and combinations whose targets never occur alone
    (their separate effects are not identified under ``encoding="gene"``).
    """
    from anndata import AnnData

    check_screen(
        adata,
        perturbation_key=perturbation_key,
        min_cells=min_cells,
        chunk_size=chunk_size,
        target_sum=target_sum,
    )
    if weighting not in ("label", "uniform"):
        msg = f"weighting must be 'label' or 'uniform', got {weighting!r}"
        raise ValueError(msg)
    if normalize not in (None, "log1p"):
        msg = f"normalize must be None or 'log1p', got {normalize!r}"
        raise ValueError(msg)

    raw = adata.obs[perturbation_key]
    if isinstance(raw.dtype, pd.CategoricalDtype):
        raw = raw.cat.remove_unused_categories()
    values = raw.cat.categories if isinstance(raw.dtype, pd.CategoricalDtype) else raw.unique()
    column = f"obs[{perturbation_key!r}]"
    parser = control_parser(list(values), controls=controls, separator=separator, column=column)
    labels, summary = canonical_labels(
        raw.astype(object),
        parser=parser,
        exclude_labels=exclude_labels,
        min_cells=min_cells,
        column=column,
    )
    logger.info("%s", summary.describe())
    codes = labels.cat.codes.to_numpy()
    groups = list(labels.cat.categories)
    cgroups = None
    if condition_key is not None:
        from ._conditions import condition_groups

        cgroups = condition_groups(
            adata,
            labels,
            condition_key=condition_key,
            perturbation_key=perturbation_key,
            min_cells=min_cells,
        )
        codes, groups = cgroups.codes, list(cgroups.obs.index)
    n_groups, n_genes = len(groups), adata.n_vars

    x = get_matrix(adata, layer)
    what = f"layer {layer!r}" if layer else "X"
    sums = np.zeros((n_groups, n_genes))
    sq = np.zeros((n_groups, n_genes))
    if is_dask(x):
        from ._dask import dask_group_sums

        def check_first(counts_like: bool, vmax: float) -> None:
            _check_counts(
                counts_like, vmax, normalize=normalize, allow_counts=allow_counts, what=what
            )

        sums, sq, _, _ = dask_group_sums(
            x,
            codes,
            n_groups,
            normalize=normalize,
            target_sum=target_sum,
            what=what,
            chunk_size=chunk_size,
            check_first=check_first,
        )
    else:
        genes = adata.var_names
        bar = progress_bar(adata.n_obs, desc="group statistics", unit="cells", enabled=progress)
        for start, stop, chunk in iter_row_chunks(x, chunk_size):
            check_values(chunk, start=start, what=what, cells=adata.obs_names, genes=genes)
            if start == 0:
                counts_like, vmax = looks_like_counts(chunk)
                _check_counts(
                    counts_like, vmax, normalize=normalize, allow_counts=allow_counts, what=what
                )
            if normalize == "log1p":
                chunk = log1p_normalize(chunk, target_sum)
            accumulate(codes[start:stop], chunk, n_groups, sums, sq)
            bar.update(stop - start)
        bar.close()

    if cgroups is None:
        n_cells = summary.n_cells.reindex(groups).to_numpy().astype(np.int64)
    else:
        n_cells = cgroups.obs[N_CELLS].to_numpy().astype(np.int64)
    eta = 1.0 / n_cells if weighting == "label" else np.ones(n_groups)
    weight = eta * n_cells
    obs = pd.DataFrame({N_CELLS: n_cells, WEIGHT: weight}, index=pd.Index(groups, name="label"))
    if cgroups is not None:
        obs.index.name = "group"
        obs.insert(0, "condition", cgroups.obs["condition"].to_numpy())
        obs.insert(0, "label", cgroups.obs["label"].to_numpy())
    out = AnnData(
        X=sums / n_cells[:, None],
        obs=obs,
        var=adata.var.copy(),
        layers={LAYER_WEIGHTED_SUM: sums * eta[:, None], LAYER_SUM: sums, LAYER_SUM_SQUARES: sq},
    )
    from .._keys import KEYS

    if KEYS.prior in adata.varp:
        out.varp[KEYS.prior] = adata.varp[KEYS.prior]
        if KEYS.prior_info in adata.uns:
            out.uns[KEYS.prior_info] = adata.uns[KEYS.prior_info]
    if KEYS.target_types in adata.uns:
        out.uns[KEYS.target_types] = dict(adata.uns[KEYS.target_types])
    out.uns[STATS_UNS] = _stats_info(
        perturbation_key=perturbation_key,
        layer=layer,
        parser=parser,
        exclude_labels=exclude_labels,
        min_cells=min_cells,
        weighting=weighting,
        normalize=normalize,
        target_sum=target_sum,
        n_obs=adata.n_obs,
        summary=summary,
    )
    if cgroups is not None:
        out.uns[STATS_UNS].update(
            condition_key=condition_key,
            conditions=list(cgroups.conditions),
            missing_in_condition={c: list(v) for c, v in cgroups.missing.items()},
        )
    return out


def _check_counts(
    counts_like: bool, vmax: float, *, normalize: str | None, allow_counts: bool, what: str
) -> None:
    if normalize == "log1p":
        if not counts_like and vmax < 30:
            logger.warning(
                "%s does not look like raw counts (max %.3g); normalize='log1p' expects counts",
                what,
                vmax,
            )
        return
    if counts_like and not allow_counts:
        msg = (
            f"{what} looks like raw counts (integers up to {vmax:g}) but log-normalized data is "
            "expected: pass normalize='log1p' (CLI: --normalize log1p) to normalize each cell to "
            "1e4 counts and log1p, or allow_counts=True to fit the counts as they are"
        )
        raise CountsError(msg)


def _stats_info(
    *, parser: LabelParser, summary: Any, exclude_labels: Iterable[str], **kw: Any
) -> dict:
    info = {k: ("" if v is None else v) for k, v in kw.items()}
    info.update(
        separator=parser.separator,
        controls=list(parser.controls),
        exclude_labels=[str(e) for e in exclude_labels],
        dropped_labels=[str(k) for k in summary.dropped_small.index],
        dropped_n_cells=summary.dropped_small.to_numpy().astype(int).tolist(),
        excluded_n_cells=int(summary.excluded.sum()),
        **{k: list(v) for k, v in summary.findings.items()},
    )
    return info
