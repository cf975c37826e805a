"""Checks of a screen made before the pass over its values, in one place.

:func:`check_screen` runs on ``obs``, ``var`` and the options alone (never on the values), so a
wrong column, gene name or option is reported at once, before any chunk is read. The values
(NaN, infinite, negative, raw counts where log-normalized data is expected) are checked during
the one pass itself, chunk by chunk (:func:`pertspectra.stats._chunks.check_values`), and the
labels by :func:`pertspectra.design.canonical_labels`. Each message names the column, gene,
layer or option and says what to do; the command line prints it as ``error: ...``.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from anndata import AnnData


def check_obs_key(adata: AnnData, key: str, *, option: str = "perturbation_key") -> None:
    """Raise a ``KeyError`` naming ``key``, a few existing columns and the option to change.

    Parameters
    ----------
    adata
        The screen.
    key
        The ``obs`` column asked for.
    option
        The keyword that named it (its command-line flag is derived: ``--perturbation-key``).
    """
    if key in adata.obs.columns:
        return
    columns = [str(c) for c in adata.obs.columns]
    lower = {c.lower(): c for c in reversed(columns)}
    close = difflib.get_close_matches(str(key).lower(), list(lower), n=1, cutoff=0.5)
    hint = f"; did you mean {lower[close[0]]!r}?" if close else ""
    shown = columns[:10] + (["..."] if len(columns) > 10 else [])
    flag = "--" + option.replace("_", "-")
    msg = (
        f"obs column {key!r} not found; available: {shown}{hint} "
        f"(name the column with {option}= / {flag})"
    )
    raise KeyError(msg)


def check_var_names(adata: AnnData) -> None:
    """Raise a ``ValueError`` on empty or duplicated gene names, naming them."""
    names = adata.var_names
    empty = np.flatnonzero(pd.isna(names) | (names.astype(str).str.strip() == ""))
    if empty.size:
        msg = (
            f"{empty.size} gene name(s) in var_names are empty (positions {empty[:5].tolist()}); "
            "give every gene a name (e.g. adata.var_names = adata.var['gene_symbols']), then "
            "call adata.var_names_make_unique()"
        )
        raise ValueError(msg)
    if names.has_duplicates:
        dup = names[names.duplicated()].unique()
        msg = (
            f"duplicated gene names in var_names: {dup.size} (e.g. {dup[:5].tolist()}); "
            "call adata.var_names_make_unique()"
        )
        raise ValueError(msg)


def check_screen(
    adata: AnnData,
    *,
    perturbation_key: str,
    min_cells: int | None = None,
    chunk_size: int | None = None,
    target_sum: float | None = None,
) -> None:
    """All checks of a screen that need no pass over its values.

    Parameters
    ----------
    adata
        The screen (cells, or per-label means).
    perturbation_key
        The ``obs`` column of perturbation labels.
    min_cells, chunk_size, target_sum
        Options to check (``None``: not used by the caller).

    Raises
    ------
    KeyError
        If ``perturbation_key`` is not an ``obs`` column.
    ValueError
        On no cells or genes, empty or duplicated gene names, or an option out of range.
    """
    check_obs_key(adata, perturbation_key)
    if adata.n_obs == 0 or adata.n_vars == 0:
        msg = f"the data has {adata.n_obs} cells x {adata.n_vars} genes; nothing to compute"
        raise ValueError(msg)
    check_var_names(adata)
    for name, value, low in (("min_cells", min_cells, 1), ("chunk_size", chunk_size, 1)):
        if value is not None and (not isinstance(value, (int, np.integer)) or value < low):
            msg = f"{name} must be an integer >= {low}, got {value!r}"
            raise ValueError(msg)
    if target_sum is not None and not (np.isfinite(target_sum) and target_sum > 0):
        msg = f"target_sum must be a positive number, got {target_sum!r}"
        raise ValueError(msg)
