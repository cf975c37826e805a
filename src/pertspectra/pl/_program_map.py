"""Programs: the top genes of each program (factor) and their loadings.

A program's loadings sum to 1 over all genes (``programs.csv`` lists only its top genes, rank 1
the highest); the heat map shows the union of the chosen programs' top genes, grouped by the
program that brought them in, with a loading of 0 where a gene is not among a program's listed
genes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import pandas as pd

from ._common import check_frame, display_names, heatmap, new_axes
from ._style import SEQUENTIAL

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def programs(
    genes: pd.DataFrame,
    *,
    names: Mapping[str, str] | None = None,
    programs: Sequence[str] | None = None,
    n_programs: int = 15,
    n_genes: int = 5,
    value: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Heat map of the top genes' loadings (rows) in each program (columns).

    Parameters
    ----------
    genes
        Long table (``programs.csv``) with columns ``program, rank, gene`` and the loading
        (column ``value``).
    names
        Program id -> display name (e.g. ``"factor_3: response to interferon-gamma"``); names
        are truncated to 40 characters. Programs without a name show their id.
    programs
        Programs to show, in this order; by default the first ``n_programs`` in order of
        appearance.
    n_programs
        How many programs to show when ``programs`` is ``None``.
    n_genes
        Top genes taken from each program.
    value
        Column of the loadings; by default ``loading``, or ``weight`` (the name
        :func:`pertspectra.enrich.top_genes` and ``programs.csv`` use) when there is no
        ``loading`` column.
    ax
        Axes to draw on; a new figure when ``None``.

    Returns
    -------
    The Axes drawn on: loadings (genes x programs) with a colorbar.
    """
    if value is None:
        value = "weight" if "loading" not in genes and "weight" in genes else "loading"
    check_frame(genes, ("program", "rank", "gene", value), "genes")
    if n_genes < 1 or n_programs < 1:
        msg = f"n_genes and n_programs must be at least 1, got {n_genes} and {n_programs}"
        raise ValueError(msg)
    table = genes.assign(program=genes["program"].astype(str), gene=genes["gene"].astype(str))
    present = list(dict.fromkeys(table["program"]))
    if programs is None:
        chosen = present[:n_programs]
    else:
        chosen = [str(p) for p in programs]
        missing = [p for p in chosen if p not in set(present)]
        if missing or not chosen:
            msg = f"programs not in genes: {missing or 'none given'}"
            raise ValueError(msg)
    rows: list[str] = []
    breaks: list[int] = []  # where each program's group of rows ends
    for p in chosen:
        top = table[table["program"] == p].sort_values("rank", kind="stable")["gene"]
        rows.extend(g for g in top.head(n_genes) if g not in rows)
        breaks.append(len(rows))
    wide = table.pivot_table(index="gene", columns="program", values=value, aggfunc="max")
    matrix = wide.reindex(index=rows, columns=chosen).fillna(0.0).to_numpy(dtype=float)
    ax = new_axes(ax, (3.0 + 0.4 * len(chosen), 2.5 + 0.16 * len(rows)))
    heatmap(
        ax,
        matrix,
        rows=rows,
        columns=display_names(chosen, names),
        cmap=SEQUENTIAL,
        vmin=0.0,
        xrotation=60,
        colorbar="loading",
    )
    for end in dict.fromkeys(breaks[:-1]):
        ax.axhline(end - 0.5, color="white", lw=1)
    ax.set_title(f"Top {n_genes} genes of {len(chosen)} programs", fontsize="medium")
    ax.set_ylabel("gene")
    return ax
