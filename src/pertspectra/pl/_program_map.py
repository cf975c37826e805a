"""Programs as their top genes: a heat map of loadings, columns named by gene sets."""

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
    """Heat map of the programs' top genes (rows) by program (columns).

    Parameters
    ----------
    genes
        Long table ``program, rank, gene`` and the loading (``programs.csv`` of
        ``pertspectra programs``, whose loading column is ``weight``; rank 1 is the
        program's highest loading).
    names
        Program -> display name (e.g. ``"factor_3: response to interferon-gamma"``).
    programs
        Programs to show, in this order; default the first ``n_programs`` in the table.
    n_programs
        Programs shown when ``programs`` is ``None``.
    n_genes
        Top genes taken from each program.
    value
        Column of the loadings; default ``loading``, else ``weight``.
    ax
        Axes to draw on; a new figure when ``None``.

    Returns
    -------
    The Axes drawn on: the union of each program's top ``n_genes`` genes (grouped by program)
    x programs, loadings (0 where a gene is not among a program's listed genes).
    """
    if value is None:
        value = "weight" if "loading" not in genes and "weight" in genes else "loading"
    genes = check_frame(genes, ("program", "rank", "gene", value), "genes")
    present = list(dict.fromkeys(genes["program"].astype(str)))
    chosen = present[:n_programs] if programs is None else [str(p) for p in programs]
    missing = [p for p in chosen if p not in set(present)]
    if missing or not chosen:
        msg = f"programs not in genes: {missing or 'none given'}"
        raise ValueError(msg)
    table = genes.assign(program=genes["program"].astype(str), gene=genes["gene"].astype(str))
    rows: list[str] = []
    for p in chosen:
        top = table[table["program"] == p].sort_values("rank").head(n_genes)["gene"]
        rows += [g for g in top if g not in rows]
    wide = table[table["program"].isin(chosen)].pivot_table(
        index="gene", columns="program", values=value, aggfunc="first"
    )
    matrix = wide.reindex(index=rows, columns=chosen).fillna(0.0).to_numpy(dtype=float)
    ax = new_axes(ax, (8.0, 7.0))
    heatmap(
        ax, matrix, rows=rows, columns=display_names(chosen, names), cmap=SEQUENTIAL, vmin=0,
        colorbar="loading (share of the program)",
    )  # fmt: skip
    ax.set_title(f"Top {n_genes} genes of {len(chosen)} programs", fontsize="medium")
    ax.set_ylabel("gene")
    return ax
