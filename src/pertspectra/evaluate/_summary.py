"""From tidy per-label metrics to a summary with win rates; the scorecard and its files."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ._metrics import LOWER_IS_BETTER

METRIC_COLUMNS = ["regime", "condition", "fold", "label", "method", "metric", "value"]
SUMMARY_COLUMNS = [
    "regime",
    "condition",
    "method",
    "metric",
    "mean",
    "sd",
    "median",
    "n",
    "versus",
    "win_rate",
    "wilcoxon_p",
]
#: Methods computed by the evaluation itself, beside the model and users' predictions.
BASELINES = ("control", "mean", "additive", "training_mean")
CEILING = "ceiling"


def _wilcoxon(diff: np.ndarray) -> float:
    from scipy import stats

    diff = diff[np.isfinite(diff)]
    nonzero = diff[diff != 0]
    if nonzero.size < 2:
        return float("nan")
    # exact for small samples without ties, the normal approximation otherwise (scipy's
    # default falls back to a permutation test with ties: seconds per call)
    exact = nonzero.size <= 25 and np.unique(np.abs(nonzero)).size == nonzero.size
    try:
        return float(stats.wilcoxon(nonzero, method="exact" if exact else "approx").pvalue)
    except ValueError:
        return float("nan")


def summarize(metrics: pd.DataFrame) -> pd.DataFrame:
    """Summary of tidy metrics: distribution per method and paired wins against each baseline.

    Parameters
    ----------
    metrics
        Tidy table with columns ``regime, condition, fold, label, method, metric, value``.

    Returns
    -------
    One row per (regime, condition, method, metric, versus) with ``mean``, ``sd``, ``median``,
    ``n`` (labels x folds with a finite value) of ``method``, and against the baseline
    ``versus`` (each of ``control``, ``mean``, ``additive``, ``training_mean``, ``ceiling``
    present in the regime, other than ``method`` itself): ``win_rate`` (share of (fold,
    label) pairs where ``method`` is strictly better; ties count half; lower is better for
    mse, mae and rank_l1) and ``wilcoxon_p`` (two-sided signed-rank test of the paired
    differences). A method without a baseline to compare gets one row with ``versus`` empty.
    """
    rows = []
    keys = ["regime", "condition", "metric"]
    for (regime, condition, metric), block in metrics.groupby(keys, sort=True, dropna=False):
        wide = block.pivot_table(
            index=["fold", "label"], columns="method", values="value", aggfunc="first", dropna=False
        )
        sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
        refs = [m for m in (*BASELINES, CEILING) if m in wide.columns]
        for method in wide.columns:
            values = wide[method].to_numpy(dtype=float)
            finite = values[np.isfinite(values)]
            stats = {
                "regime": regime,
                "condition": condition,
                "method": method,
                "metric": metric,
                "mean": float(np.mean(finite)) if finite.size else float("nan"),
                "sd": float(np.std(finite, ddof=1)) if finite.size > 1 else float("nan"),
                "median": float(np.median(finite)) if finite.size else float("nan"),
                "n": int(finite.size),
            }
            versus = [r for r in refs if r != method]
            if not versus:
                rows.append({**stats, "versus": "", "win_rate": np.nan, "wilcoxon_p": np.nan})
            for ref in versus:
                win, p = versus_scores(values, wide[ref].to_numpy(dtype=float), sign)
                rows.append({**stats, "versus": ref, "win_rate": win, "wilcoxon_p": p})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def versus_scores(values: np.ndarray, other: np.ndarray, sign: float) -> tuple[float, float]:
    """Win rate (ties count half) and Wilcoxon p of ``values`` against ``other``, per label.

    ``sign`` is ``-1`` for metrics where lower is better; labels missing in either are skipped.
    """
    ok = np.isfinite(values) & np.isfinite(other)
    diff = sign * (values[ok] - other[ok])
    win = (np.sum(diff > 0) + 0.5 * np.sum(diff == 0)) / diff.size if diff.size else np.nan
    return float(win), _wilcoxon(diff)


@dataclass
class Scorecard:
    """Everything an evaluation produced.

    Attributes
    ----------
    metrics
        Tidy per-label metrics (columns ``regime, condition, fold, label, method, metric,
        value``).
    summary
        :func:`summarize` of ``metrics``.
    split
        The split used (columns ``fold, cell, label, role``).
    predictions
        ``(fold, method)`` -> predicted means of that fold's held-out labels.
    observed
        ``fold`` -> observed means of that fold's held-out labels (what the predictions are
        scored against); changes are taken against the ``control`` method's prediction (the
        training control mean).
    settings
        What produced it: protocol, folds, seeds, fit options, input, versions, seconds.
    """

    #: The names a scorecard folder holds (see :meth:`write`).
    FILES: ClassVar[tuple[str, ...]] = (
        "metrics.csv", "summary.csv", "split.csv", "settings.json", "predictions", "observed",
    )  # fmt: skip

    metrics: pd.DataFrame
    summary: pd.DataFrame
    split: pd.DataFrame
    predictions: dict[tuple[int, str], pd.DataFrame] = field(default_factory=dict)
    observed: dict[int, pd.DataFrame] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def table(self, metric: str = "pearson_delta", *, regime: str | None = None) -> pd.DataFrame:
        """Mean of ``metric`` per method (rows) and regime (columns)."""
        block = self.metrics[self.metrics["metric"] == metric]
        if regime is not None:
            block = block[block["regime"] == regime]
        return block.pivot_table(index="method", columns="regime", values="value", aggfunc="mean")

    def write(self, out: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the scorecard's files into the folder ``out`` (atomically).

        ``metrics.csv``, ``summary.csv``, ``split.csv``, ``settings.json``,
        ``predictions/fold{k}_{method}.csv`` and ``observed/fold{k}.csv``; read back with
        :meth:`read`.
        """
        from .._utils import atomic_path, check_output_folder

        out = Path(out)
        check_output_folder(out, overwrite=overwrite, allowed=self.FILES, what="a scorecard folder")
        with atomic_path(out, directory=True) as tmp:
            self.metrics.to_csv(tmp / "metrics.csv", index=False)
            self.summary.to_csv(tmp / "summary.csv", index=False)
            self.split.to_csv(tmp / "split.csv", index=False)
            (tmp / "predictions").mkdir()
            for (fold, method), table in self.predictions.items():
                table.to_csv(tmp / "predictions" / f"fold{fold}_{_safe(method)}.csv")
            (tmp / "observed").mkdir()
            for fold, table in self.observed.items():
                table.to_csv(tmp / "observed" / f"fold{fold}.csv")
            index = [
                {"fold": fold, "method": method, "file": f"fold{fold}_{_safe(method)}.csv"}
                for fold, method in self.predictions
            ]
            pd.DataFrame(index, columns=["fold", "method", "file"]).to_csv(
                tmp / "predictions" / "index.csv", index=False
            )
            (tmp / "settings.json").write_text(json.dumps(self.settings, indent=1, default=str))
        return out

    @classmethod
    def read(cls, path: str | os.PathLike) -> Scorecard:
        """Read a scorecard folder written by :meth:`write` (or ``pertspectra evaluate``).

        Raises
        ------
        FileNotFoundError
            When ``path`` holds no ``metrics.csv``.
        """
        path = Path(path)
        if not (path / "metrics.csv").is_file():
            msg = f"{path} holds no scorecard (metrics.csv not found)"
            raise FileNotFoundError(msg)
        metrics = pd.read_csv(path / "metrics.csv", dtype={"label": str, "condition": str})
        metrics["condition"] = metrics["condition"].fillna("")
        summary = (
            pd.read_csv(path / "summary.csv", dtype={"condition": str, "versus": str})
            if (path / "summary.csv").is_file()
            else summarize(metrics)
        )
        for col in ("condition", "versus"):
            summary[col] = summary[col].fillna("")
        split = (
            pd.read_csv(path / "split.csv", dtype={"cell": str, "label": str})
            if (path / "split.csv").is_file()
            else pd.DataFrame(columns=["fold", "cell", "label", "role"])
        )
        predictions: dict[tuple[int, str], pd.DataFrame] = {}
        index = path / "predictions" / "index.csv"
        if index.is_file():
            for row in pd.read_csv(index, dtype={"method": str}).itertuples():
                predictions[(int(row.fold), str(row.method))] = _read_means(
                    path / "predictions" / str(row.file)
                )
        observed = {
            int(file.stem.removeprefix("fold")): _read_means(file)
            for file in sorted((path / "observed").glob("fold*.csv"))
        }
        settings_file = path / "settings.json"
        settings = json.loads(settings_file.read_text()) if settings_file.is_file() else {}
        return cls(metrics, summary, split, predictions, observed, settings)

    def changes(self, method: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Predicted and observed changes of the held-out labels against the training control.

        Returns ``(predicted, observed)``: (fold, label) rows x genes, each minus that fold's
        training control mean (the ``control`` method's prediction). Average over the
        ``"label"`` index level for one row per label.

        Raises
        ------
        KeyError
            When the scorecard holds no predictions of ``method`` with observed means.
        """
        preds, obs, keys = [], [], []
        for fold, observed in sorted(self.observed.items()):
            if (fold, method) not in self.predictions or (fold, "control") not in self.predictions:
                continue
            pred = self.predictions[(fold, method)]
            control = self.predictions[(fold, "control")]
            labels = [lab for lab in observed.index if lab in pred.index and lab in control.index]
            genes = list(observed.columns)
            base = control.loc[labels, genes].to_numpy()
            preds.append(pred.loc[labels, genes] - base)
            obs.append(observed.loc[labels, genes] - base)
            keys += [(int(fold), str(lab)) for lab in labels]
        if not preds:
            msg = f"no held-out predictions of {method!r} with observed means in this scorecard"
            raise KeyError(msg)
        pred_all, obs_all = pd.concat(preds), pd.concat(obs)
        pred_all.index = obs_all.index = pd.MultiIndex.from_tuples(keys, names=["fold", "label"])
        return pred_all, obs_all


def _safe(method: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in method)


def _read_means(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path, index_col=0)
    table.index = table.index.astype(str)
    table.columns = table.columns.astype(str)
    return table
