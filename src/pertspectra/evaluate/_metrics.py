"""Prediction metrics the field trusts, computed per label on mean profiles.

All functions take DataFrames of mean expression (labels x genes) and a control mean profile.
``pearson_delta`` is the Pearson correlation of predicted vs observed change from control,
``pearson_delta_top`` the same on each label's top-``n_top`` differentially expressed genes
(largest observed ``|change|``), ``mse_top`` the mean squared error there, ``direction_top`` the
fraction of those genes whose predicted change has the observed sign, and ``spearman`` the
paper's metric (Spearman of raw predicted vs observed means, saturated by the gene baseline).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 2 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def prediction_metrics(
    predicted: pd.DataFrame, observed: pd.DataFrame, control: pd.Series, *, n_top: int = 20
) -> pd.DataFrame:
    """Per-label metrics of predicted vs observed mean profiles.

    Parameters
    ----------
    predicted
        Predicted means (labels x genes).
    observed
        Observed means of held-out cells (same labels and genes).
    control
        Observed control mean (genes).
    n_top
        Number of top differentially expressed genes per label.

    Returns
    -------
    DataFrame indexed by label with ``pearson_delta``, ``pearson_delta_top``, ``mse``,
    ``mse_top``, ``direction_top`` and ``spearman``.
    """
    missing = observed.index.difference(predicted.index)
    if len(missing):
        msg = f"no prediction for labels {list(missing[:5])}"
        raise KeyError(msg)
    pred = predicted.loc[observed.index, observed.columns].to_numpy(float)
    obs = observed.to_numpy(float)
    ctrl = control.reindex(observed.columns).to_numpy(float)
    rows = []
    for p, o in zip(pred, obs, strict=True):
        dp, do = p - ctrl, o - ctrl
        top = np.argsort(-np.abs(do))[:n_top]
        rows.append(
            {
                "pearson_delta": _pearson(dp, do),
                "pearson_delta_top": _pearson(dp[top], do[top]),
                "mse": float(np.mean((p - o) ** 2)),
                "mse_top": float(np.mean((p[top] - o[top]) ** 2)),
                "direction_top": float(np.mean(np.sign(dp[top]) == np.sign(do[top]))),
                "spearman": float(sps.spearmanr(p, o).statistic),
            }
        )
    return pd.DataFrame(rows, index=observed.index)


def matched_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Correlations of the best one-to-one matching of the rows of ``a`` and ``b``.

    Compares two sets of factors (e.g. ``W`` of two fits, or a fit and the simulated truth):
    rows are matched by maximizing the summed Pearson correlation across columns (Hungarian
    algorithm); rows with zero variance count as correlation 0.

    Parameters
    ----------
    a, b
        Factors x features arrays with the same number of columns.

    Returns
    -------
    The matched correlations, one per matched pair (``min(len(a), len(b))`` values), in the
    order of ``a``'s rows.
    """
    from scipy.optimize import linear_sum_assignment

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        msg = f"need two 2-d arrays with the same number of columns, got {a.shape} and {b.shape}"
        raise ValueError(msg)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(a, b)[: a.shape[0], a.shape[0] :]
    corr = np.nan_to_num(corr)
    rows, cols = linear_sum_assignment(-corr)
    return corr[rows, cols]
