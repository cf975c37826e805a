"""Hold out, fit, score: the two held-out regimes written once.

- :func:`split_cells`: a fraction of each label's cells as test cells (stratified by label);
- :func:`holdout_cells`: fit on the other cells, score the held-out cells' per-label means
  beside the ``control``, ``mean`` and ``training_mean`` baselines;
- :func:`holdout_combinations`: fit on the group statistics without a fraction of the
  combinations (:func:`split_combinations`), score those beside ``control``, ``mean`` and
  ``additive``.

Today's split rules; the folds and protocols of the evaluation stage build on these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._utils import default_rng
from ..design import CONTROL_LABEL
from ._baselines import baseline_predictions
from ._metrics import prediction_metrics
from ._split import split_combinations

if TYPE_CHECKING:
    from anndata import AnnData

    from .._types import SeedLike
    from ..model._fitted import FittedModel


@dataclass
class Holdout:
    """What a held-out evaluation produced.

    Attributes
    ----------
    metrics
        Method -> per-label metrics (:func:`prediction_metrics`).
    predictions
        Method -> predicted means (held-out labels x genes).
    models
        Fit name -> the fitted model.
    observed
        Observed means of the held-out labels (labels x genes).
    control
        The control mean the changes are measured against.
    train
        The training group statistics.
    """

    metrics: dict[str, pd.DataFrame]
    predictions: dict[str, pd.DataFrame]
    models: dict[str, FittedModel]
    observed: pd.DataFrame
    control: pd.Series
    train: AnnData
    seconds: dict[str, float] = field(default_factory=dict)

    def table(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Mean of each metric over the held-out labels, one row per method."""
        out = pd.DataFrame({name: df.mean() for name, df in self.metrics.items()}).T
        return out if columns is None else out[list(columns)]

    def score(self, name: str, predicted: pd.DataFrame) -> pd.DataFrame:
        """Score another prediction of the held-out labels the same way and keep it."""
        self.predictions[name] = predicted
        self.metrics[name] = prediction_metrics(predicted, self.observed, self.control)
        return self.metrics[name]


def split_cells(
    labels: Sequence[object] | pd.Series, *, fraction: float = 0.2, seed: SeedLike = 0
) -> np.ndarray:
    """Stratified cell split: ``round(fraction * n)`` random cells of each label become test cells.

    Parameters
    ----------
    labels
        One label per cell; for a categorical Series the labels are visited in category
        order, otherwise in sorted order.
    fraction
        Share of each label's cells held out.
    seed
        Seed or generator.

    Returns
    -------
    Boolean array, ``True`` for test cells.

    Examples
    --------
    >>> from pertspectra.evaluate import split_cells
    >>> test = split_cells(["a"] * 10 + ["b"] * 5, fraction=0.2, seed=0)
    >>> int(test[:10].sum()), int(test[10:].sum())
    (2, 1)
    """
    if not 0.0 < fraction < 1.0:
        msg = f"fraction must be in (0, 1), got {fraction}"
        raise ValueError(msg)
    gen = default_rng(seed)
    if isinstance(labels, pd.Series) and isinstance(labels.dtype, pd.CategoricalDtype):
        series = labels.reset_index(drop=True)  # labels drawn in category order
    else:
        series = pd.Series(np.asarray(labels, dtype=object))
    is_test = np.zeros(len(series), dtype=bool)
    for idx in series.groupby(series, sort=True, observed=True).indices.values():
        is_test[gen.choice(idx, size=round(fraction * len(idx)), replace=False)] = True
    return is_test


def _fit_all(
    train: AnnData, fits: Mapping[str, Mapping[str, Any]] | None, seed: SeedLike, progress: bool
) -> tuple[dict[str, FittedModel], dict[str, float]]:
    import time

    from ..train import fit

    models, seconds = {}, {}
    for name, options in (fits if fits is not None else {"pertspectra": {}}).items():
        t0 = time.perf_counter()
        models[name] = fit(
            train, **{"seed": seed, "progress": progress, "store": False, **dict(options)}
        )
        seconds[name] = time.perf_counter() - t0
    return models, seconds


def holdout_combinations(
    adata: AnnData,
    *,
    fits: Mapping[str, Mapping[str, Any]] | None = None,
    fraction: float = 0.2,
    seed: SeedLike = 0,
    progress: bool = True,
) -> Holdout:
    """Hold out a fraction of the combinations, fit on the rest, score the held-out ones.

    Parameters
    ----------
    adata
        Group statistics (:func:`~pertspectra.stats.compute_group_stats`) with combinations
        whose singles are present.
    fits
        Name -> options of :func:`~pertspectra.train.fit` (``{"pertspectra": {}}``: one fit
        with the defaults). ``seed`` and ``progress`` are passed unless an entry sets them.
    fraction
        Share of the eligible combinations held out (:func:`split_combinations`).
    seed
        Seed of the split and of the fits.
    progress
        Show progress of the fits.

    Returns
    -------
    A :class:`Holdout` with the fits and the ``control``, ``mean`` and ``additive`` baselines.
    """
    labels = [str(x) for x in adata.obs_names]
    train_labels, test = split_combinations(labels, fraction=fraction, seed=seed)
    train = adata[train_labels].copy()
    observed = adata[test].to_df()
    control = adata[CONTROL_LABEL].to_df().iloc[0]
    models, seconds = _fit_all(train, fits, seed, progress)
    preds = {name: m.predict(test) for name, m in models.items()}
    preds.update(baseline_predictions(train.to_df(), test))
    metrics = {name: prediction_metrics(p, observed, control) for name, p in preds.items()}
    return Holdout(metrics, preds, models, observed, control, train, seconds)


def holdout_cells(
    adata: AnnData,
    *,
    perturbation_key: str,
    fits: Mapping[str, Mapping[str, Any]] | None = None,
    fraction: float = 0.2,
    seed: SeedLike = 0,
    progress: bool = True,
    **stats_kwargs: Any,
) -> Holdout:
    """Hold out a fraction of each label's cells, fit on the rest, score the held-out means.

    Parameters
    ----------
    adata
        Cell-level AnnData.
    perturbation_key
        ``obs`` column of perturbation labels.
    fits
        Name -> options of :func:`~pertspectra.train.fit` (see :func:`holdout_combinations`).
    fraction
        Share of each label's cells held out (:func:`split_cells`).
    seed
        Seed of the split and of the fits.
    progress
        Show progress of the fits.
    **stats_kwargs
        Options of :func:`~pertspectra.stats.compute_group_stats` for the training cells
        (``normalize``, ``min_cells``, ...); the held-out statistics use the same options
        with ``min_cells=1``, and only labels kept in training are scored.

    Returns
    -------
    A :class:`Holdout` with the fits and the ``control``, ``mean`` and ``training_mean``
    baselines.
    """
    from .._label_checks import quietly
    from ..stats import compute_group_stats

    raw = adata.obs[perturbation_key]
    if isinstance(raw.dtype, pd.CategoricalDtype):
        raw = raw.cat.remove_unused_categories()
    is_test = split_cells(raw, fraction=fraction, seed=seed)
    kw = {"perturbation_key": perturbation_key, "progress": False, **stats_kwargs}
    train = compute_group_stats(adata[~is_test], **kw)
    held = quietly(compute_group_stats)(adata[is_test], **{**kw, "min_cells": 1})  # checked above
    labels = [lab for lab in held.obs_names if lab != CONTROL_LABEL and lab in train.obs_names]
    observed = held[labels].to_df()
    control = held[CONTROL_LABEL].to_df().iloc[0]
    models, seconds = _fit_all(train, fits, seed, progress)
    preds = {name: m.predict(labels) for name, m in models.items()}
    base = baseline_predictions(train.to_df(), labels)
    preds.update(
        {"training_mean": train[labels].to_df(), "control": base["control"], "mean": base["mean"]}
    )
    metrics = {name: prediction_metrics(p, observed, control) for name, p in preds.items()}
    return Holdout(metrics, preds, models, observed, control, train, seconds)
