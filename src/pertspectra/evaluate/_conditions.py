"""The scorecard per condition: does sharing programs across conditions help?

For a screen run under several conditions (cell lines, treated/untreated, stimulated/resting;
:func:`~pertspectra.train.fit_conditions`), :func:`evaluate_conditions` splits each condition's
cells as :func:`evaluate` splits a screen (:func:`make_split`, run per condition with the same
protocol, folds and seed: cells 64/16/20 per label, or held-out combinations, the folds of
the combinations drawn once over every condition so that a fold holds a combination out of
all conditions at once), so that every method sees the same training and test cells, and
scores per condition, on the test cells:

- ``pertspectra``: one :func:`~pertspectra.train.fit_conditions` on every condition's training
  cells (shared programs plus ``condition_factors`` of each condition's own);
- ``pertspectra_pooled``: one plain :func:`~pertspectra.train.fit` on all training cells,
  the condition ignored; its predicted change (label minus control) is added to the
  condition's training control mean, so it predicts the *same change* in every condition
  (its raw prediction would be one expression level for every condition, off by the
  conditions' baseline differences before any effect is scored);
- ``pertspectra_separate``: one plain fit per condition on that condition's cells alone;
- the baselines of :func:`evaluate` from the condition's own training means (``control``,
  ``mean``, ``training_mean`` / ``additive``) and its half-split ``ceiling``;
- other models' predictions (:func:`read_predictions`; rows whose ``condition`` is a
  condition's name serve that condition, rows without one serve every condition).

The plain fits get as many programs as the condition model has in each condition (``n_factors``
shared + ``condition_factors`` own), so each condition is predicted from equally many programs.
Changes are measured against the condition's own training control mean (each condition has its
own control cells), and the ``*_pert`` metrics against the mean of its training perturbations.
Training weights follow :func:`evaluate`: a group's ``1/|C|`` is counted over all its cells
before splitting (a (label, condition) group for the condition model and the separate fits, a
label over every condition for the pooled fit).

The result is a :class:`Scorecard` whose ``condition`` column names the condition; its
predictions and observed means are indexed ``"<condition>:<label>"`` and its split has a
``condition`` column. :func:`condition_table` gives the mean of the headline metrics per
condition and method.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._keys import KEYS, STATS_UNS
from ..design import CONTROL_LABEL, build_design
from ._baselines import baseline_predictions
from ._condition_split import cell_groups, condition_split, plain_factors, quiet_missing
from ._condition_summary import CONDITION_FITS, versus_fits
from ._external import check_prediction_genes, predictions_for
from ._holdout import _fit_all
from ._metrics import prediction_metrics, rank_l1
from ._protocols import check_split
from ._scorecard import _half_means, _reweight, _tidy
from ._summary import BASELINES, CEILING, METRIC_COLUMNS, Scorecard, summarize

if TYPE_CHECKING:
    from anndata import AnnData

    from .._types import SeedLike
    from ..model import ConditionModel, FittedModel
    from ._protocols import Protocol


def _for_condition(table: pd.DataFrame, condition: str) -> pd.DataFrame:
    """Rows of a predictions table serving ``condition`` (its own rows win over generic ones)."""
    own = table[table["condition"] == condition]
    generic = table[(table["condition"] == "") & ~table["label"].isin(own["label"])]
    return pd.concat([generic, own])


def evaluate_conditions(
    adata: AnnData,
    *,
    perturbation_key: str,
    condition_key: str,
    condition_factors: int | None = None,
    protocol: Protocol = "auto",
    folds: int = 5,
    split_seed: int = 1,
    split: pd.DataFrame | None = None,
    predictions: Mapping[str, pd.DataFrame] | None = None,
    fit_options: Mapping[str, Any] | None = None,
    seed: SeedLike = 0,
    progress: bool = True,
    **stats_kwargs: Any,
) -> Scorecard:
    """Score the condition model, a pooled fit, one fit per condition and the baselines per condition.

    Parameters
    ----------
    adata
        Cells x genes in memory (log-normalized, or raw counts with ``normalize="log1p"``).
    perturbation_key
        ``obs`` column of perturbation labels.
    condition_key
        ``obs`` column of conditions (cell line, treatment, ...); not ``perturbation_key``.
    condition_factors
        Programs of each condition's own in the condition model (default: a quarter of the
        shared ones, as :func:`~pertspectra.train.fit_conditions`).
    protocol, folds, split_seed
        See :func:`make_split`, applied within each condition (:func:`condition_split`); a
        held-out combination is held out of every condition in the same fold.
    split
        A split table to reuse (``split.csv`` of an earlier run; columns ``fold, cell, label,
        role``); then ``protocol``, ``folds`` and ``split_seed`` are not used.
    predictions
        Name -> table of other predictions (:func:`read_predictions`; a ``condition`` column
        names the condition a row predicts, empty for every condition).
    fit_options
        Options of :func:`~pertspectra.train.fit` shared by the three fits (``n_factors`` is
        the condition model's shared programs; the plain fits get ``n_factors +
        condition_factors``).
    seed
        Seed of the fits and of the ceiling's half split.
    progress
        Show progress over folds.
    **stats_kwargs
        Options of :func:`~pertspectra.stats.compute_group_stats` (``normalize``,
        ``exclude_labels``, ``controls``, ``separator``, ``min_cells``, ...); ``min_cells``
        applies to each (label, condition) pair over all its cells, before splitting.

    Returns
    -------
    The :class:`Scorecard`, its ``condition`` column filled (methods: the module docstring).
    Also writes ``adata.obsm["pertspectra_split"]`` as :func:`evaluate` does.

    Raises
    ------
    ValueError
        On clashing method names, the same column as labels and conditions, a condition
        without enough control cells, or a split that names cells not in the data.
    """
    from .._label_checks import quietly
    from .._utils import default_rng, progress_bar
    from ..stats import compute_group_stats

    def stats(subset: AnnData, **kwargs: Any) -> AnnData:
        with quiet_missing():  # on folds: labels and groups checked on all cells already
            return quietly(compute_group_stats)(subset, progress=False, **kwargs)

    t_start = time.perf_counter()
    fit_options = dict(fit_options or {})
    predictions = dict(predictions or {})
    clash = set(predictions) & {*CONDITION_FITS, *BASELINES, CEILING}
    if clash:
        msg = f"method name(s) {sorted(clash)} are taken; choose other names"
        raise ValueError(msg)
    if "condition_key" in stats_kwargs:
        msg = "give condition_key once, as the keyword of evaluate_conditions"
        raise TypeError(msg)
    check_prediction_genes(predictions, [str(g) for g in adata.var_names])
    cells, groups, parser, missing = cell_groups(
        adata, perturbation_key, condition_key, stats_kwargs
    )
    conditions = list(dict.fromkeys(groups["condition"].astype(str)))
    if split is None:
        split = condition_split(
            cells, protocol=protocol, folds=folds, split_seed=split_seed, parser=parser
        )
    else:
        split = check_split(split)
        unknown = sorted(set(split["cell"]) - set(cells.index))
        if unknown:
            msg = f"the split names cell(s) not in the data (or of dropped groups): {unknown[:5]}"
            raise ValueError(msg)
        split["condition"] = cells["condition"].reindex(split["cell"]).to_numpy()
    wide = split.pivot_table(index="cell", columns="fold", values="role", aggfunc="first")
    wide = wide.reindex(adata.obs_names.astype(str)).fillna("")
    wide.columns = [f"fold{k}" for k in wide.columns]
    wide.index = adata.obs_names
    adata.obsm[KEYS.split] = wide

    # resolved once on all labels, so that every fold's fits have the same programs
    design = build_design(
        dict.fromkeys(str(x) for x in groups["label"]),
        encoding=fit_options.get("encoding", "gene"),
        parser=parser,
    )
    shared, own = plain_factors(
        fit_options, condition_factors, adata.n_vars, design.n_perturbations
    )
    plain = {**fit_options, "n_factors": shared + own}
    cond_opts = {"seed": seed, "progress": False, "store": False, **fit_options}
    cond_opts["n_factors"] = shared
    opts = {**stats_kwargs, "min_cells": 1}
    cond_of = adata.obs[condition_key].astype(str).to_numpy()
    rows: list[pd.DataFrame] = []
    fit_log: list[dict[str, Any]] = []
    held_preds: dict[tuple[int, str], list[pd.DataFrame]] = {}
    held_obs: dict[int, list[pd.DataFrame]] = {}
    scored: dict[tuple[str, str, str], list[tuple[int, pd.DataFrame, pd.DataFrame]]] = {}
    gen = default_rng(seed)
    by_cond = {"condition_key": condition_key, "perturbation_key": perturbation_key}
    fold_ids = sorted(split["fold"].unique())
    bar = progress_bar(len(fold_ids), desc="evaluate", unit="folds", enabled=progress, every=0.0)
    for fold in fold_ids:
        part = split[split["fold"] == fold]
        role = dict(zip(part["cell"], part["role"], strict=True))
        cell_role = np.array([role.get(c, "") for c in adata.obs_names.astype(str)], dtype=object)
        train_mask, test_mask = cell_role == "train", cell_role == "test"
        train, model, pooled, separate, log = _fit_fold(
            adata, train_mask, stats=stats, groups=groups, cond_of=cond_of,
            keys=by_cond, own=own, plain=plain, cond_opts=cond_opts, seed=seed, opts=opts,
        )  # fmt: skip
        fit_log += [{"fold": int(fold), **entry} for entry in log]
        held = stats(adata[test_mask], **by_cond, **opts)
        pooled_ctrl = pooled.predict([CONTROL_LABEL]).iloc[0]
        for c in conditions:
            here = (train.obs["condition"] == c).to_numpy()
            means = train[here].to_df().set_axis(train.obs["label"][here].astype(str))
            held_here = (held.obs["condition"] == c).to_numpy()
            observed_all = (
                held[held_here].to_df().set_axis(held.obs["label"][held_here].astype(str))
            )
            test_labels = [lab for lab in observed_all.index if lab != CONTROL_LABEL]
            combos = [lab for lab in test_labels if lab not in means.index]
            singles = [lab for lab in test_labels if lab in means.index]
            held_obs.setdefault(int(fold), []).append(_named(observed_all.loc[combos + singles], c))
            control = means.loc[CONTROL_LABEL]
            pert_mean = means.drop(index=CONTROL_LABEL).mean(axis=0)
            test_c = adata[test_mask & (cond_of == c)]
            half = gen.random(test_c.n_obs) < 0.5
            halves = tuple(_half_means(test_c, h, perturbation_key, opts) for h in (half, ~half))
            for regime, group in (("combinations", combos), ("cells", singles)):
                if not group:
                    continue
                observed = observed_all.loc[group]
                base = baseline_predictions(means, group, parser=parser)
                methods: dict[str, pd.DataFrame] = {
                    "pertspectra": model.condition(c).predict(group),
                    "pertspectra_pooled": pooled.predict(group) - pooled_ctrl + control,
                    "pertspectra_separate": separate[c].predict(group),
                    "control": base["control"],
                    "mean": base["mean"],
                }
                if regime == "combinations":
                    methods["additive"] = base["additive"]
                else:
                    methods["training_mean"] = means.loc[group]
                for name, table in predictions.items():
                    methods[name] = predictions_for(
                        _for_condition(table, c), name=name, fold=int(fold), labels=group,
                        genes=list(observed.columns), canonical=parser.canonical,
                    )  # fmt: skip
                additive = base["additive"] if regime == "combinations" else None
                for name, pred in methods.items():
                    block = prediction_metrics(
                        pred, observed, control, perturbation_mean=pert_mean, additive=additive
                    )
                    rows.append(_tidy(block, regime, int(fold), name).assign(condition=c))
                    held_preds.setdefault((int(fold), name), []).append(_named(pred, c))
                    scored.setdefault((regime, c, name), []).append((int(fold), pred, observed))
                first, second = halves
                ok = [lab for lab in group if lab in first.index and lab in second.index]
                if ok:
                    block = prediction_metrics(
                        first.loc[ok], second.loc[ok], control, perturbation_mean=pert_mean,
                        additive=additive.loc[ok] if additive is not None else None,
                    )  # fmt: skip
                    rows.append(_tidy(block, regime, int(fold), CEILING).assign(condition=c))
        bar.update(1)
    bar.close()
    rows += _rank_rows(scored)
    metrics = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=METRIC_COLUMNS)
    settings = {
        "perturbation_key": perturbation_key,
        "condition_key": condition_key,
        "conditions": conditions,
        "missing_in_condition": missing,
        "n_factors": shared,
        "condition_factors": own,
        "plain_n_factors": shared + own,
        "protocol": protocol,
        "folds": folds,
        "split_seed": split_seed,
        "seed": seed if isinstance(seed, int) else str(seed),
        "fit_options": dict(fit_options),
        "predictions": sorted(predictions),
        "statistics": dict(stats_kwargs),
        "fits_run": fit_log,
        "seconds": time.perf_counter() - t_start,
    }
    return Scorecard(
        metrics[METRIC_COLUMNS],
        pd.concat([summarize(metrics), versus_fits(metrics)], ignore_index=True),
        split,
        {key: pd.concat(parts) for key, parts in held_preds.items()},
        {fold: pd.concat(parts) for fold, parts in held_obs.items()},
        settings,
    )


def _fit_fold(
    adata: AnnData,
    train_mask: np.ndarray,
    *,
    stats: Callable[..., AnnData],
    groups: pd.DataFrame,
    cond_of: np.ndarray,
    keys: Mapping[str, str],
    own: int,
    plain: Mapping[str, Any],
    cond_opts: Mapping[str, Any],
    seed: SeedLike,
    opts: Mapping[str, Any],
) -> tuple[AnnData, ConditionModel, FittedModel, dict[str, FittedModel], list[dict[str, Any]]]:
    """The three fits of a fold on its training cells, and their log.

    Returns the (label, condition) training statistics, the condition model, the pooled fit,
    the separate fits (condition -> model) and one log entry per fit.
    """
    from ..train import fit_conditions

    perturbation_key = keys["perturbation_key"]
    train = stats(adata[train_mask], **keys, **opts)
    label_weights = train.uns[STATS_UNS].get("weighting", "label") == "label"
    if label_weights:
        _reweight(train, groups["n_cells"].astype(float))
    t0 = time.perf_counter()
    model = fit_conditions(train, condition_factors=own, **cond_opts)
    runs: list[tuple[str, str, Any, float]] = [("pertspectra", "", model, time.perf_counter() - t0)]
    pooled_train = stats(adata[train_mask], perturbation_key=perturbation_key, **opts)
    if label_weights:
        _reweight(pooled_train, groups.groupby("label")["n_cells"].sum().astype(float))
    fitted, secs = _fit_all(pooled_train, {"pertspectra_pooled": plain}, seed, False)
    pooled = fitted["pertspectra_pooled"]
    runs.append(("pertspectra_pooled", "", pooled, secs["pertspectra_pooled"]))
    separate: dict[str, FittedModel] = {}
    for c in dict.fromkeys(groups["condition"].astype(str)):
        alone = stats(adata[train_mask & (cond_of == c)], perturbation_key=perturbation_key, **opts)
        if label_weights:
            mine = groups[groups["condition"] == c]
            _reweight(alone, pd.Series(mine["n_cells"].to_numpy(float), index=mine["label"]))
        fitted, secs = _fit_all(alone, {"pertspectra_separate": plain}, seed, False)
        separate[c] = fitted["pertspectra_separate"]
        runs.append(("pertspectra_separate", c, separate[c], secs["pertspectra_separate"]))
    log = [
        {
            "method": name, "condition": c, "epochs": m.training["epochs"],
            "stop_reason": m.training["stop_reason"], "final_loss": m.training["final_loss"],
            "converged": bool(m.training.get("converged", False)), "seconds": seconds,
        }
        for name, c, m, seconds in runs
    ]  # fmt: skip
    return train, model, pooled, separate, log


def _named(table: pd.DataFrame, condition: str) -> pd.DataFrame:
    """``table`` with its labels renamed ``"<condition>:<label>"``."""
    from ..stats._conditions import group_name

    return table.set_axis([group_name(str(lab), condition) for lab in table.index])


def _rank_rows(
    scored: Mapping[tuple[str, str, str], Sequence[tuple[int, pd.DataFrame, pd.DataFrame]]],
) -> list[pd.DataFrame]:
    """``rank_l1`` per (regime, condition, method), over the folds when each label is held once."""
    rows = []
    for (regime, condition, name), parts in scored.items():
        seen = [lab for _, pred, _ in parts for lab in pred.index]
        sets = [list(parts)] if len(set(seen)) == len(seen) else [[p] for p in parts]
        for group in sets:
            pred = pd.concat([p for _, p, _ in group])
            obs = pd.concat([o for _, _, o in group])
            ranks = rank_l1(pred, obs).rename("rank_l1").to_frame()
            for fold, p, _ in group:
                rows.append(
                    _tidy(ranks.loc[p.index], regime, fold, name).assign(condition=condition)
                )
    return rows
