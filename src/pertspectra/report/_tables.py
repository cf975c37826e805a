"""Tables of the report: escaped, sortable HTML."""

from __future__ import annotations

import pandas as pd

#: Rows shown per table (the files hold the rest).
MAX_ROWS = 200


def table_html(table: pd.DataFrame | None, *, index: bool = False, max_rows: int = MAX_ROWS) -> str:
    """A DataFrame as an escaped, sortable HTML table (first ``max_rows`` rows)."""
    if table is None or table.empty:
        return '<p class="empty">(none)</p>'
    shown = table.head(max_rows)
    text = shown.to_html(
        index=index,
        escape=True,
        border=0,
        classes="sortable",
        float_format=lambda v: f"{v:.4g}",
        na_rep="",
    )
    if len(table) > max_rows:
        text += f'<p class="note">first {max_rows} of {len(table)} rows (all in the CSV file)</p>'
    return text
