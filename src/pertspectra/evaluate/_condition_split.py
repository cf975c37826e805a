"""Per-condition groups and splits of a screen under several conditions (:func:`evaluate_conditions`).

- :func:`condition_split`: each condition's cells split as :func:`make_split` splits a screen;
- ``cell_groups``: each kept cell's canonical label and condition, and the groups' sizes
  (``min_cells`` applied per (label, condition) pair over all cells, before splitting);
- ``plain_factors``: the programs of the plain fits compared with the condition model.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..design import LabelParser, canonical_labels, control_parser
from ._protocols import make_split

if TYPE_CHECKING:
    from anndata import AnnData

    from ._protocols import Protocol


@contextlib.contextmanager
def quiet_missing() -> Iterator[None]:
    """Drop the "condition lacks label(s)" warnings of statistics of subsets of cells.

    On a fold's training or test cells a label dropped from a condition over all cells (and
    reported then) has no cells at all; the warning would repeat on every fold.
    """
    log = logging.getLogger("pertspectra.stats._conditions")

    def keep(record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR

    log.addFilter(keep)
    try:
        yield
    finally:
        log.removeFilter(keep)


def cell_groups(
    adata: AnnData, perturbation_key: str, condition_key: str, stats_kwargs: Mapping[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, LabelParser, dict[str, list[str]]]:
    """Each cell's canonical label and condition (kept groups only) and the groups' sizes."""
    from ..stats._conditions import condition_groups

    if perturbation_key not in adata.obs.columns:
        msg = f"obs column {perturbation_key!r} not found; available: {list(adata.obs.columns)}"
        raise KeyError(msg)
    raw = adata.obs[perturbation_key].to_numpy(dtype=object)
    column = f"obs[{perturbation_key!r}]"
    parser = control_parser(
        pd.unique(raw), controls=stats_kwargs.get("controls"),
        separator=stats_kwargs.get("separator", "+"), column=column,
    )  # fmt: skip
    min_cells = int(stats_kwargs.get("min_cells", 50))
    canon, _ = canonical_labels(
        raw, parser=parser, exclude_labels=stats_kwargs.get("exclude_labels", ()),
        min_cells=min_cells, column=column,
    )  # fmt: skip
    groups = condition_groups(
        adata, canon, condition_key=condition_key, perturbation_key=perturbation_key,
        min_cells=min_cells,
    )  # fmt: skip
    kept = groups.codes >= 0
    cells = pd.DataFrame(
        {
            "label": groups.obs["label"].to_numpy()[groups.codes[kept]],
            "condition": groups.obs["condition"].to_numpy()[groups.codes[kept]],
        },
        index=pd.Index(adata.obs_names[kept].astype(str), name="cell"),
    )
    return cells, groups.obs, parser, groups.missing


def condition_split(
    cells: pd.DataFrame,
    *,
    protocol: Protocol = "auto",
    folds: int = 5,
    split_seed: int = 1,
    parser: LabelParser | None = None,
) -> pd.DataFrame:
    """Each condition's cells split as :func:`make_split` splits a screen, fold by fold.

    The held-out combinations are drawn once, over every condition: ``KFold(folds,
    shuffle=True, random_state=split_seed)`` over the sorted union of the combinations that
    can be held out in some condition (those whose singles are all present there). Fold ``k``
    holds its combinations out of every condition at once, so no fit of the fold (the
    condition model and the pooled fit share what they learn across conditions) sees a
    held-out combination in another condition. When every condition has the same
    combinations this is :func:`make_split` applied to each condition.

    Parameters
    ----------
    cells
        One row per cell (index: cell names) with columns ``label`` (canonical) and
        ``condition``.
    protocol, folds, split_seed, parser
        See :func:`make_split`; applied to each condition's cells (``"auto"`` resolves per
        condition), with the same seed, so fold ``k`` of every condition is fitted together.

    Returns
    -------
    DataFrame with columns ``fold``, ``cell``, ``label``, ``role``, ``condition``. A held-out
    combination's cells are ``test`` in the conditions where it can be held out and ``val``
    (neither fitted nor scored) elsewhere; in a fold that does not hold it out, it is
    ``train`` where it can be held out and keeps :func:`make_split`'s roles elsewhere.
    """
    from sklearn.model_selection import KFold

    from ._protocols import eligible_combinations, resolve_protocol

    parser = parser or LabelParser()
    parts: list[pd.DataFrame] = []
    eligible: dict[str, set[str]] = {}
    for cond, block in cells.groupby("condition", sort=False):
        labels = list(block["label"])
        try:
            part = make_split(
                labels, cells=list(block.index), protocol=protocol,
                folds=folds, split_seed=split_seed, parser=parser,
            )  # fmt: skip
            kind = resolve_protocol(protocol, labels, parser=parser)
        except ValueError as err:
            msg = f"condition {cond!r}: {err}"
            raise ValueError(msg) from None
        here = eligible_combinations(labels, parser=parser) if kind == "combinations" else []
        eligible[str(cond)] = set(here)
        parts.append(part.assign(condition=str(cond)))
    union = sorted(set[str]().union(*eligible.values()))
    if union:
        kfold = KFold(n_splits=int(folds), shuffle=True, random_state=int(split_seed))
        held = {
            k: {union[i] for i in test_idx}
            for k, (_, test_idx) in enumerate(kfold.split(np.arange(len(union))))
        }
        for part in parts:
            mine = eligible[str(part["condition"].iloc[0])]
            label = part["label"].astype(str).to_numpy()
            out = np.array(
                [lab in held[k] for k, lab in zip(part["fold"], label, strict=True)], dtype=bool
            )
            can = np.isin(label, list(mine))
            role = part["role"].to_numpy(dtype=object).copy()
            role[can & ~out] = "train"
            role[can & out] = "test"
            role[~can & out] = "val"
            part["role"] = role
    return pd.concat(parts, ignore_index=True)


def plain_factors(
    fit_options: Mapping[str, Any],
    condition_factors: int | None,
    n_genes: int,
    n_perturbations: int = 0,
) -> tuple[int, int]:
    """(shared programs, each condition's own) as :func:`fit_conditions` resolves them."""
    from ..model._config import default_n_factors
    from ..train._fit_conditions import default_condition_factors

    config = fit_options.get("config")
    n = fit_options.get("n_factors", getattr(config, "n_factors", None))
    shared = default_n_factors(n_genes, n_perturbations=n_perturbations) if n is None else int(n)
    own = default_condition_factors(shared) if condition_factors is None else condition_factors
    return shared, int(own)
