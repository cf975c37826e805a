"""Held-out protocols and their splits, as the authors coded them (``../shared/protocol.md``).

``"combinations"``
    K folds (``KFold(folds, shuffle=True, random_state=split_seed)``; the authors: 5 folds,
    seed 1) over the combinations whose single perturbations are all present ("eligible"); all
    cells of a fold's held-out combinations are its test cells. Cells of single perturbations
    and of the control are split 64/16/20 train/val/test, stratified by label (the same split
    in every fold); their test cells are scored as the ``cells`` regime. Cells of ineligible
    combinations are split 80/20 train/val. For pseudobulk input (one row per label) every
    single, the control and every ineligible combination are training.
``"cells"``
    Each label's cells 64/16/20 train/val/test, stratified by label; ``folds`` independent
    splits (fold ``k`` drawn from the seed ``(split_seed, k)``).
``"auto"``
    ``"combinations"`` when some combination has all its singles present, else ``"cells"``.

A split is a tidy table with columns ``fold``, ``cell``, ``label``, ``role`` (``role`` in
``train``/``val``/``test``; ``cell`` empty for pseudobulk input), one row per (fold, cell).
``val`` cells are left out of training and are not scored (the authors only record a
validation loss). ``min_cells`` is applied to all cells of a label before splitting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from ..design import CONTROL_LABEL, LabelParser

Protocol = Literal["combinations", "cells", "auto"]
SPLIT_COLUMNS = ["fold", "cell", "label", "role"]
ROLES = ("train", "val", "test")


def eligible_combinations(labels: Sequence[str], *, parser: LabelParser | None = None) -> list[str]:
    """Combination labels whose single perturbations are all among ``labels`` (sorted)."""
    parser = parser or LabelParser()
    labels = [str(x) for x in dict.fromkeys(labels)]
    singles = {lab for lab in labels if len(parser.tokens(lab)) == 1}
    return sorted(
        lab for lab in labels if len(parser.tokens(lab)) > 1 and set(parser.tokens(lab)) <= singles
    )


def resolve_protocol(
    protocol: Protocol, labels: Sequence[str], *, parser: LabelParser | None = None
) -> Literal["combinations", "cells"]:
    """``"auto"`` -> ``"combinations"`` when some combination is eligible, else ``"cells"``."""
    if protocol not in ("combinations", "cells", "auto"):
        msg = f"protocol must be 'combinations', 'cells' or 'auto', got {protocol!r}"
        raise ValueError(msg)
    eligible = eligible_combinations(labels, parser=parser)
    if protocol == "auto":
        return "combinations" if eligible else "cells"
    if protocol == "combinations" and not eligible:
        msg = (
            "--protocol combinations needs a combination whose singles are all present; "
            "there is none (use --protocol cells)"
        )
        raise ValueError(msg)
    return protocol


def _stratified_roles(
    labels: np.ndarray, fractions: Sequence[float], gen: np.random.Generator
) -> np.ndarray:
    """Assign each cell a role, per label: the first shares to train/val, the rest to test."""
    roles = np.empty(len(labels), dtype=object)
    series = pd.Series(labels)
    for idx in series.groupby(series, sort=True).indices.values():
        order = gen.permutation(idx)
        n = len(order)
        n_train = round(fractions[0] * n)
        n_val = round(fractions[1] * n) if len(fractions) > 1 else n - n_train
        n_val = min(n_val, n - n_train)
        roles[order[:n_train]] = "train"
        roles[order[n_train : n_train + n_val]] = "val"
        roles[order[n_train + n_val :]] = "test" if len(fractions) > 2 else "val"
    return roles


def make_split(
    labels: Sequence[str],
    *,
    cells: Sequence[str] | None = None,
    protocol: Protocol = "auto",
    folds: int = 5,
    split_seed: int = 1,
    parser: LabelParser | None = None,
) -> pd.DataFrame:
    """The split of a screen's cells (or pseudobulk labels) into train/val/test per fold.

    Parameters
    ----------
    labels
        Canonical label of each cell (after excluded and rare labels were dropped), or of
        each pseudobulk row (then ``cells=None``).
    cells
        Cell names (``obs_names``), aligned with ``labels``; ``None`` for pseudobulk input.
    protocol
        ``"combinations"``, ``"cells"`` or ``"auto"`` (see the module docstring).
    folds
        Number of folds (combinations) or independent splits (cells).
    split_seed
        Seed of the folds and of the stratified cell splits (the authors: 1).
    parser
        Label conventions.

    Returns
    -------
    DataFrame with columns ``fold``, ``cell``, ``label``, ``role``.

    Examples
    --------
    >>> from pertspectra.evaluate import make_split
    >>> labels = ["ctrl", "A", "B", "C", "A+B", "A+C", "B+C"]
    >>> split = make_split(labels, protocol="combinations", folds=3)
    >>> sorted(split.loc[split.role == "test", "label"])
    ['A+B', 'A+C', 'B+C']
    """
    from sklearn.model_selection import KFold

    parser = parser or LabelParser()
    labels_arr = np.asarray([str(x) for x in labels], dtype=object)
    pseudobulk = cells is None
    cell_arr = (
        np.full(len(labels_arr), "", dtype=object)
        if cells is None
        else np.asarray([str(c) for c in cells], dtype=object)
    )
    if len(cell_arr) != len(labels_arr):
        msg = f"cells ({len(cell_arr)}) and labels ({len(labels_arr)}) differ in length"
        raise ValueError(msg)
    if pseudobulk and pd.Series(labels_arr).duplicated().any():
        msg = "pseudobulk input has one row per label; some labels appear twice"
        raise ValueError(msg)
    if int(folds) < 1:
        msg = f"folds must be >= 1, got {folds}"
        raise ValueError(msg)
    kind = resolve_protocol(protocol, list(labels_arr), parser=parser)
    if CONTROL_LABEL not in set(labels_arr):
        msg = "no control label: every fold needs control cells in training"
        raise ValueError(msg)
    parts = []
    if kind == "cells":
        if pseudobulk:
            msg = "--protocol cells needs cells; pseudobulk input holds one mean per label"
            raise ValueError(msg)
        for k in range(int(folds)):
            gen = np.random.default_rng([int(split_seed), k])
            roles = _stratified_roles(labels_arr, (0.64, 0.16, 0.20), gen)
            parts.append(
                pd.DataFrame({"fold": k, "cell": cell_arr, "label": labels_arr, "role": roles})
            )
        return pd.concat(parts, ignore_index=True)[SPLIT_COLUMNS]

    eligible = eligible_combinations(list(labels_arr), parser=parser)
    if int(folds) < 2:
        msg = f"--folds {folds}: the combinations protocol needs at least 2 folds (KFold)"
        raise ValueError(msg)
    if int(folds) > len(eligible):
        msg = f"--folds {folds} exceeds the {len(eligible)} combinations that can be held out"
        raise ValueError(msg)
    n_tokens = np.array([len(parser.tokens(lab)) for lab in labels_arr])
    is_eligible = np.isin(labels_arr, eligible)
    single_like = n_tokens <= 1
    base = np.empty(len(labels_arr), dtype=object)
    if pseudobulk:
        base[:] = "train"
    else:
        gen = np.random.default_rng(int(split_seed))
        base[single_like] = _stratified_roles(labels_arr[single_like], (0.64, 0.16, 0.20), gen)
        other = ~single_like & ~is_eligible
        if other.any():
            base[other] = _stratified_roles(labels_arr[other], (0.8, 0.2), gen)
    kfold = KFold(n_splits=int(folds), shuffle=True, random_state=int(split_seed))
    for k, (_, test_idx) in enumerate(kfold.split(np.arange(len(eligible)))):
        held = {eligible[i] for i in test_idx}
        roles = base.copy()
        in_held = np.isin(labels_arr, list(held))
        roles[is_eligible & ~in_held] = "train"
        roles[in_held] = "test"
        parts.append(
            pd.DataFrame({"fold": k, "cell": cell_arr, "label": labels_arr, "role": roles})
        )
    return pd.concat(parts, ignore_index=True)[SPLIT_COLUMNS]


def check_split(split: pd.DataFrame) -> pd.DataFrame:
    """Validate a split table (e.g. a user's ``split.csv``) and return it with clean types."""
    missing = [c for c in SPLIT_COLUMNS if c not in split.columns]
    if missing:
        msg = f"split table lacks column(s) {missing}; expected {SPLIT_COLUMNS}"
        raise ValueError(msg)
    out = split[SPLIT_COLUMNS].copy()
    out["fold"] = pd.to_numeric(out["fold"], errors="raise").astype(int)
    out["cell"] = out["cell"].fillna("").astype(str)
    out["label"] = out["label"].astype(str)
    out["role"] = out["role"].astype(str)
    bad = sorted(set(out["role"]) - set(ROLES))
    if bad:
        msg = f"split table has role(s) {bad}; roles are {list(ROLES)}"
        raise ValueError(msg)
    key = ["fold", "cell"] if (out["cell"] != "").any() else ["fold", "label"]
    if out.duplicated(key).any():
        msg = f"split table assigns some {key[1]} two roles within one fold"
        raise ValueError(msg)
    return out
