"""What the scorecard per condition adds to a summary: the fits compared with each other.

- :data:`CONDITION_FITS`: the condition model, the pooled fit and the separate fits;
- ``versus_fits``: summary rows (:func:`summarize`'s columns) of each fit against the other
  two, paired by (fold, condition, label), so the summary says whether sharing programs helps;
- :func:`condition_table`: mean of the headline metrics per (regime, condition, method).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._metrics import LOWER_IS_BETTER
from ._summary import BASELINES, CEILING, SUMMARY_COLUMNS, versus_scores

if TYPE_CHECKING:
    from ._summary import Scorecard

#: The fits compared per condition: sharing programs, ignoring the condition, each alone.
CONDITION_FITS = ("pertspectra", "pertspectra_pooled", "pertspectra_separate")
#: The metrics :func:`condition_table` shows by default (and ``pertspectra evaluate`` prints).
HEADLINE = ("pearson_delta", "pearson_delta_top20", "mse_top20")


def versus_fits(metrics: pd.DataFrame) -> pd.DataFrame:
    """Each of :data:`CONDITION_FITS` against the other two, as :func:`summarize` does baselines.

    Parameters
    ----------
    metrics
        Tidy metrics of :func:`evaluate_conditions`.

    Returns
    -------
    Rows with :func:`summarize`'s columns, ``versus`` one of the other fits: ``win_rate``
    (share of (fold, label) pairs where ``method`` is strictly better, ties half; lower is
    better for mse, mae and rank_l1) and ``wilcoxon_p`` of the paired differences.
    """
    rows = []
    fits = metrics[metrics["method"].isin(CONDITION_FITS)]
    for (regime, condition, metric), block in fits.groupby(
        ["regime", "condition", "metric"], sort=True, dropna=False
    ):
        wide = block.pivot_table(
            index=["fold", "label"], columns="method", values="value", aggfunc="first", dropna=False
        )
        sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
        for method in wide.columns:
            values = wide[method].to_numpy(dtype=float)
            finite = values[np.isfinite(values)]
            for ref in (m for m in CONDITION_FITS if m in wide.columns and m != method):
                win, p = versus_scores(values, wide[ref].to_numpy(dtype=float), sign)
                rows.append({
                    "regime": regime, "condition": condition, "method": method, "metric": metric,
                    "mean": float(np.mean(finite)) if finite.size else np.nan,
                    "sd": float(np.std(finite, ddof=1)) if finite.size > 1 else np.nan,
                    "median": float(np.median(finite)) if finite.size else np.nan,
                    "n": int(finite.size), "versus": ref, "win_rate": win, "wilcoxon_p": p,
                })  # fmt: skip
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def condition_table(
    card: Scorecard, metrics: Sequence[str] = HEADLINE, *, regime: str | None = None
) -> pd.DataFrame:
    """Mean of each metric per (regime, condition, method), the methods in a fixed order.

    Parameters
    ----------
    card
        A scorecard of :func:`evaluate_conditions` (or :meth:`Scorecard.read` of its folder).
    metrics
        Metric names (columns of the result).
    regime
        Only this regime (``"cells"`` or ``"combinations"``).

    Returns
    -------
    DataFrame indexed by ``regime, condition, method`` with one column per metric.
    """
    block = card.metrics[card.metrics["metric"].isin(list(metrics))]
    if regime is not None:
        block = block[block["regime"] == regime]
    table = block.pivot_table(
        index=["regime", "condition", "method"], columns="metric", values="value", aggfunc="mean"
    )
    order = [*CONDITION_FITS, *BASELINES, CEILING]
    rank = {m: i for i, m in enumerate(order)}
    keys = sorted(table.index, key=lambda k: (k[0], k[1], rank.get(k[2], len(order)), k[2]))
    return table.reindex(index=pd.MultiIndex.from_tuples(keys, names=table.index.names))[
        [m for m in metrics if m in table.columns]
    ]
