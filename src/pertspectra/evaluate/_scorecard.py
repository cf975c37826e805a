"""One scorecard for every held-out regime: the model, the baselines, a ceiling, others' predictions.

For each fold of the split (:func:`make_split`), PertSpectra is fitted on the training cells
and every held-out label is predicted by every method; the metrics
(:func:`prediction_metrics`, :func:`rank_l1`) compare each prediction with the observed mean
of the held-out cells. Changes are measured against the *training* control mean (what a user
has when predicting) and, for the ``*_pert`` metrics, against the mean of the training
perturbations' means. Methods:

- ``pertspectra`` (or the names given in ``fits``): the fitted model;
- ``control`` (no change), ``mean`` (mean of the training perturbations), ``additive``
  (``ctrl + (A - ctrl) + (B - ctrl)`` from training means; combinations), ``training_mean``
  (the training mean of the same label; cells regime);
- ``ceiling``: cells: two random halves of each label's held-out cells scored against each
  other; pseudobulk with ceiling layers (Wessels' ``half1_mean``, ``half2_mean``): the first
  half predicting the second; the top-k genes taken from the profile scored against;
- any user-supplied predictions (:func:`read_predictions`), under their names.

Training weights follow the paper: ``1/|C|`` counted over all cells of a label before
splitting, so a label keeps its share of the objective whatever part of it is held out.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._keys import KEYS, LAYER_WEIGHTED_SUM, STATS_UNS, WEIGHT
from ..design import CONTROL_LABEL, LabelParser, canonical_labels, control_parser
from ._baselines import baseline_predictions
from ._external import check_prediction_genes, predictions_for
from ._holdout import _fit_all
from ._metrics import prediction_metrics, rank_l1
from ._protocols import check_split, make_split
from ._summary import BASELINES, CEILING, METRIC_COLUMNS, Scorecard, summarize

if TYPE_CHECKING:
    from anndata import AnnData

    from .._types import SeedLike
    from ._protocols import Protocol


def _tidy(block: pd.DataFrame, regime: str, fold: int, method: str) -> pd.DataFrame:
    long = (
        block.rename_axis("label")
        .reset_index()
        .melt(id_vars="label", var_name="metric", value_name="value")
    )
    long.insert(0, "regime", regime)
    long.insert(1, "condition", "")
    long.insert(2, "fold", fold)
    long.insert(4, "method", method)
    return long[METRIC_COLUMNS]


def _reweight(train: AnnData, n_all: pd.Series) -> None:
    """Cell weights 1/|C| counted over all cells of a label (the authors), in place."""
    n_train = train.obs["n_cells"].to_numpy(dtype=float)
    share = n_train / n_all.reindex(train.obs_names).to_numpy(dtype=float)
    train.obs[WEIGHT] = share
    train.layers[LAYER_WEIGHTED_SUM] = np.asarray(train.X) * share[:, None]


def _half_means(
    adata: AnnData, mask: np.ndarray, perturbation_key: str, opts: dict[str, Any]
) -> pd.DataFrame:
    """Per-label means of the cells in ``mask`` (empty when no control cell is among them)."""
    from .._label_checks import quietly
    from ..stats import compute_group_stats

    compute_group_stats = quietly(compute_group_stats)  # labels checked on all cells already
    try:
        stats = compute_group_stats(
            adata[mask], perturbation_key=perturbation_key, progress=False, **opts
        )
    except ValueError:  # too few cells in this half (e.g. no control cell)
        return pd.DataFrame()
    return stats.to_df()


def evaluate(
    adata: AnnData,
    *,
    perturbation_key: str,
    pseudobulk: bool = False,
    n_cells_key: str | None = None,
    protocol: Protocol = "auto",
    folds: int = 5,
    split_seed: int = 1,
    split: pd.DataFrame | None = None,
    ceiling_layers: tuple[str, str] | None = None,
    predictions: Mapping[str, pd.DataFrame] | None = None,
    fits: Mapping[str, Mapping[str, Any]] | None = None,
    seed: SeedLike = 0,
    progress: bool = True,
    **stats_kwargs: Any,
) -> Scorecard:
    """Score PertSpectra, the baselines, a ceiling and other predictions on held-out labels.

    Parameters
    ----------
    adata
        Cells x genes in memory (log-normalized, or raw counts with ``normalize="log1p"``),
        or with ``pseudobulk=True`` one row per label holding its mean.
    perturbation_key
        ``obs`` column of perturbation labels.
    pseudobulk
        ``adata`` holds per-label means (:func:`~pertspectra.stats.from_pseudobulk`).
    n_cells_key
        ``obs`` column of cell counts of a pseudobulk table (optional).
    protocol, folds, split_seed
        See :func:`make_split`.
    split
        A split table to reuse (``split.csv`` of an earlier run: columns ``fold, cell, label,
        role``); then ``protocol``, ``folds`` and ``split_seed`` are not used.
    ceiling_layers
        Two layers of a pseudobulk table holding half-split means; default
        ``("half1_mean", "half2_mean")`` when both exist.
    predictions
        Name -> table of other predictions (:func:`read_predictions`).
    fits
        Name -> options of :func:`~pertspectra.train.fit` (default ``{"pertspectra": {}}``).
    seed
        Seed of the fits and of the ceiling's half split.
    progress
        Show progress over folds.
    **stats_kwargs
        Options of :func:`~pertspectra.stats.compute_group_stats` (``normalize``,
        ``exclude_labels``, ``controls``, ``separator``, ``min_cells``, ...) or, for pseudobulk
        input, of :func:`~pertspectra.stats.from_pseudobulk`.

    Returns
    -------
    The :class:`Scorecard` (``.write(folder)`` saves it). For cell-level input also writes
    ``adata.obsm["pertspectra_split"]``: one column per fold (``fold0``, ...) with each cell's
    role (``train``, ``val``, ``test``; empty for cells of dropped labels).
    """
    from .._label_checks import quietly
    from .._utils import default_rng, progress_bar
    from ..stats import compute_group_stats, from_pseudobulk

    compute_group_stats = quietly(compute_group_stats)  # on folds: labels checked on all cells
    t_start = time.perf_counter()
    fits = dict(fits) if fits is not None else {"pertspectra": {}}
    predictions = dict(predictions or {})
    clash = set(fits) & set(predictions) | (set(fits) | set(predictions)) & {*BASELINES, CEILING}
    if clash:
        msg = f"method name(s) {sorted(clash)} are taken; choose other names"
        raise ValueError(msg)
    check_prediction_genes(predictions, [str(g) for g in adata.var_names])
    if pseudobulk:
        everything = from_pseudobulk(
            adata, perturbation_key=perturbation_key, n_cells_key=n_cells_key, **stats_kwargs
        )
        info = everything.uns[STATS_UNS]
        parser = LabelParser(separator=str(info["separator"]), controls=tuple(info["controls"]))
        labels = [str(x) for x in everything.obs_names]
        cells = None
        if ceiling_layers is None and {"half1_mean", "half2_mean"} <= set(everything.layers):
            ceiling_layers = ("half1_mean", "half2_mean")
        n_all = None
    else:
        if perturbation_key not in adata.obs.columns:
            msg = f"obs column {perturbation_key!r} not found; available: {list(adata.obs.columns)}"
            raise KeyError(msg)
        raw = adata.obs[perturbation_key].to_numpy(dtype=object)
        parser = control_parser(
            pd.unique(raw),
            controls=stats_kwargs.get("controls"),
            separator=stats_kwargs.get("separator", "+"),
            column=f"obs[{perturbation_key!r}]",
        )
        canon, summary = canonical_labels(
            raw,
            parser=parser,
            exclude_labels=stats_kwargs.get("exclude_labels", ()),
            min_cells=stats_kwargs.get("min_cells", 50),
            column=f"obs[{perturbation_key!r}]",
        )
        kept = canon.notna().to_numpy()
        labels = [str(x) for x in canon[kept]]
        cells = [str(c) for c in adata.obs_names[kept]]
        n_all = summary.n_cells
    if split is None:
        split = make_split(
            labels,
            cells=cells,
            protocol=protocol,
            folds=folds,
            split_seed=split_seed,
            parser=parser,
        )
    else:
        split = check_split(split)
        known = set(labels) if pseudobulk else set(cells or ())
        col = "label" if pseudobulk else "cell"
        unknown = sorted(set(split[col]) - known)
        if unknown:
            msg = f"the split names {col}(s) not in the data: {unknown[:5]}"
            raise ValueError(msg)

    if not pseudobulk:
        wide = split.pivot_table(index="cell", columns="fold", values="role", aggfunc="first")
        wide = wide.reindex(adata.obs_names.astype(str)).fillna("")
        wide.columns = [f"fold{k}" for k in wide.columns]
        wide.index = adata.obs_names
        adata.obsm[KEYS.split] = wide
    rows: list[pd.DataFrame] = []
    fit_log: list[dict[str, Any]] = []
    held_preds: dict[tuple[int, str], pd.DataFrame] = {}
    held_obs: dict[int, pd.DataFrame] = {}
    per_regime: dict[str, dict[str, list[tuple[int, pd.DataFrame, pd.DataFrame]]]] = {}
    gen = default_rng(seed)
    fold_ids = sorted(split["fold"].unique())
    bar = progress_bar(len(fold_ids), desc="evaluate", unit="folds", enabled=progress, every=0.0)
    for fold in fold_ids:
        part = split[split["fold"] == fold]
        role = dict(
            zip(part["cell"] if not pseudobulk else part["label"], part["role"], strict=True)
        )
        if pseudobulk:
            train_labels = [lab for lab in labels if role.get(lab) == "train"]
            test_labels = [lab for lab in labels if role.get(lab) == "test"]
            train = everything[train_labels].copy()
            observed_all = everything[test_labels].to_df()
            halves = None
            if ceiling_layers is not None:
                a, b = ceiling_layers
                halves = tuple(
                    pd.DataFrame(
                        everything[test_labels].layers[x],
                        index=test_labels,
                        columns=everything.var_names,
                    )
                    for x in (a, b)
                )
        else:
            assert cells is not None
            assert n_all is not None
            cell_role = np.array(
                [role.get(c, "") for c in adata.obs_names.astype(str)], dtype=object
            )
            opts = {**stats_kwargs, "min_cells": 1}
            train = compute_group_stats(
                adata[cell_role == "train"],
                perturbation_key=perturbation_key,
                progress=False,
                **opts,
            )
            if train.uns[STATS_UNS].get("weighting", "label") == "label":
                _reweight(train, n_all)
            test_mask = cell_role == "test"
            held = compute_group_stats(
                adata[test_mask], perturbation_key=perturbation_key, progress=False, **opts
            )
            test_labels = [lab for lab in held.obs_names if lab != CONTROL_LABEL]
            observed_all = held[test_labels].to_df()
            half = gen.random(int(test_mask.sum())) < 0.5
            test_ad = adata[test_mask]
            halves = tuple(_half_means(test_ad, h, perturbation_key, opts) for h in (half, ~half))
        # a held-out label absent from training is predicted from its singles: combinations
        combos = [lab for lab in test_labels if lab not in train.obs_names]
        singles = [lab for lab in test_labels if lab in train.obs_names]
        models, _ = _fit_all(train, fits, seed, progress=False)
        for name, model in models.items():
            t = model.training
            fit_log.append({
                "fold": int(fold), "method": name, "epochs": t["epochs"],
                "stop_reason": t["stop_reason"], "final_loss": t["final_loss"],
                "converged": bool(t.get("converged", False)), "seconds": t["seconds"],
            })  # fmt: skip
        held_obs[int(fold)] = observed_all.loc[combos + singles]
        means = train.to_df()
        control = means.loc[CONTROL_LABEL]
        pert_mean = means.drop(index=CONTROL_LABEL).mean(axis=0)
        for regime, group in (("combinations", combos), ("cells", singles)):
            if not group:
                continue
            observed = observed_all.loc[group]
            base = baseline_predictions(means, group, parser=parser)
            methods: dict[str, pd.DataFrame] = {n: m.predict(group) for n, m in models.items()}
            methods["control"], methods["mean"] = base["control"], base["mean"]
            if regime == "combinations":
                methods["additive"] = base["additive"]
            else:
                methods["training_mean"] = means.loc[group]
            for name, table in predictions.items():
                methods[name] = predictions_for(
                    table, name=name, fold=int(fold), labels=group, genes=list(observed.columns),
                    canonical=parser.canonical,
                )  # fmt: skip
            additive = base["additive"] if regime == "combinations" else None
            for name, pred in methods.items():
                block = prediction_metrics(
                    pred, observed, control, perturbation_mean=pert_mean, additive=additive
                )
                rows.append(_tidy(block, regime, int(fold), name))
                held_preds[(int(fold), name)] = pd.concat(
                    [held_preds.get((int(fold), name), pd.DataFrame()), pred]
                )
                per_regime.setdefault(regime, {}).setdefault(name, []).append(
                    (int(fold), pred, observed)
                )
            if halves is not None:
                first, second = halves
                ok = [lab for lab in group if lab in first.index and lab in second.index]
                if ok:
                    block = prediction_metrics(
                        first.loc[ok], second.loc[ok], control, perturbation_mean=pert_mean,
                        additive=additive.loc[ok] if additive is not None else None,
                    )  # fmt: skip
                    rows.append(_tidy(block, regime, int(fold), CEILING))
        bar.update(1)
    bar.close()
    for regime, by_method in per_regime.items():
        for name, parts in by_method.items():
            labels_seen = [lab for _, pred, _ in parts for lab in pred.index]
            groups = [parts] if len(set(labels_seen)) == len(labels_seen) else [[p] for p in parts]
            for group_parts in groups:
                pred = pd.concat([p for _, p, _ in group_parts])
                obs = pd.concat([o for _, _, o in group_parts])
                ranks = rank_l1(pred, obs).rename("rank_l1").to_frame()
                for fold, p, _ in group_parts:
                    rows.append(_tidy(ranks.loc[p.index], regime, fold, name))
    metrics = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=METRIC_COLUMNS)
    settings = {
        "perturbation_key": perturbation_key,
        "pseudobulk": pseudobulk,
        "protocol": protocol,
        "folds": folds,
        "split_seed": split_seed,
        "seed": seed if isinstance(seed, int) else str(seed),
        "fits": {k: dict(v) for k, v in fits.items()},
        "predictions": sorted(predictions),
        "ceiling_layers": list(ceiling_layers) if ceiling_layers else None,
        "statistics": dict(stats_kwargs),
        "fits_run": fit_log,
        "seconds": time.perf_counter() - t_start,
    }
    return Scorecard(metrics, summarize(metrics), split, held_preds, held_obs, settings)
