"""Perturbations x programs: how much each perturbation moves each program.

``effect`` is the signed change of expression a perturbation causes through a program (in
expression units, see :func:`pertspectra.enrich.perturbation_programs`). Rows and columns are
ordered by average-linkage hierarchical clustering (Euclidean distance), so perturbations that
act through the same programs sit together.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._common import check_frame, display_names, heatmap, leaf_order, new_axes
from ._style import DIVERGING

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def perturbation_programs(
    table: pd.DataFrame,
    *,
    names: Mapping[str, str] | None = None,
    n_programs: int = 20,
    n_labels: int = 40,
    value: str = "effect",
    cluster: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """Heat map of the perturbations' (rows) effects through each program (columns).

    Parameters
    ----------
    table
        Long table with columns ``label, program`` and ``value`` (by default ``effect``: the
        signed effect; ``rank`` within label, 1 = largest ``|effect|``, is not needed).
    names
        Program id -> display name, truncated to 40 characters; programs without one show
        their id.
    n_programs
        Programs shown: those with the largest ``max |value|`` over labels.
    n_labels
        Labels shown: those with the largest total ``|value|`` over the programs shown.
    value
        Column to show.
    cluster
        Order rows and columns by hierarchical clustering (when there are at least 3 of them);
        otherwise by decreasing size.
    ax
        Axes to draw on; a new figure when ``None``.

    Returns
    -------
    The Axes drawn on: the values (a diverging colour map centred at 0 with symmetric limits)
    and a colorbar. Missing (label, program) pairs are 0.
    """
    check_frame(table, ("label", "program", value), "table")
    if n_programs < 1 or n_labels < 1:
        msg = f"n_programs and n_labels must be at least 1, got {n_programs} and {n_labels}"
        raise ValueError(msg)
    long = table.assign(label=table["label"].astype(str), program=table["program"].astype(str))
    wide = long.pivot_table(index="label", columns="program", values=value, aggfunc="sum")
    wide = wide.fillna(0.0).astype(float)
    size = wide.abs().max(axis=0).sort_values(ascending=False, kind="stable")
    wide = wide[size.index[:n_programs]]
    total = wide.abs().sum(axis=1).sort_values(ascending=False, kind="stable")
    wide = wide.loc[total.index[:n_labels]]
    matrix = wide.to_numpy()
    if cluster:
        rows, cols = leaf_order(matrix), leaf_order(matrix.T)
        wide = wide.iloc[rows, cols]
        matrix = wide.to_numpy()
    finite = np.abs(matrix[np.isfinite(matrix)])
    limit = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    ax = new_axes(ax, (3.0 + 0.35 * wide.shape[1], 2.5 + 0.2 * wide.shape[0]))
    columns = display_names(wide.columns, names)
    heatmap(
        ax,
        matrix,
        rows=list(wide.index),
        columns=columns,
        cmap=DIVERGING,
        vmin=-limit,
        vmax=limit,
        xrotation=60,
        colorbar=f"{value} vs control" if value == "effect" else value,
    )
    ax.set_ylabel("perturbation")
    ax.set_title(
        f"Perturbation effect through programs ({wide.shape[0]} labels x {wide.shape[1]} programs)",
        fontsize="medium",
    )
    return ax
