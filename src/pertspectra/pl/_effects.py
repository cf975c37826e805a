"""Perturbations x programs: each perturbation's signed effect on each program, clustered."""

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
    """Heat map of perturbations (rows) x programs (columns) of a signed effect.

    Parameters
    ----------
    table
        Long table ``label, program, effect`` (``perturbation_programs.csv``).
    names
        Program -> display name.
    n_programs
        Programs shown: those with the largest maximum ``|value|``.
    n_labels
        Perturbations shown: those with the largest total ``|value|``.
    value
        Column drawn.
    cluster
        Order rows and columns by average-linkage clustering (when there are 3 or more).
    ax
        Axes to draw on; a new figure when ``None``.

    Returns
    -------
    The Axes drawn on, with a diverging colour map centred at 0 and symmetric limits.
    """
    table = check_frame(table, ("label", "program", value), "table")
    wide = table.pivot_table(index="label", columns="program", values=value, aggfunc="first")
    wide.index, wide.columns = wide.index.astype(str), wide.columns.astype(str)
    wide = wide.fillna(0.0)
    cols = wide.abs().max(axis=0).sort_values(ascending=False, kind="stable").index[:n_programs]
    rows = wide.abs().sum(axis=1).sort_values(ascending=False, kind="stable").index[:n_labels]
    block = wide.loc[rows, cols]
    matrix = block.to_numpy(dtype=float)
    if cluster:
        r, c = leaf_order(matrix), leaf_order(matrix.T)
        block = block.iloc[r, c]
        matrix = block.to_numpy(dtype=float)
    finite = np.abs(matrix[np.isfinite(matrix)])
    limit = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    ax = new_axes(ax, (9.0, 7.5))
    heatmap(
        ax, matrix, rows=list(block.index), columns=display_names(block.columns, names, 35),
        cmap=DIVERGING, vmin=-limit, vmax=limit, colorbar=f"{value} vs control",
    )  # fmt: skip
    ax.set_title(
        f"{len(block.index)} perturbations x {len(block.columns)} programs", fontsize="medium"
    )
    return ax
