"""Other models' predictions, scored exactly like ours (GEARS, CPA, a linear model, ...)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

#: Columns of a predictions file that are not genes.
META_COLUMNS = ("label", "fold", "condition")


def read_predictions(path: str | os.PathLike) -> pd.DataFrame:
    """Read a predictions table: a ``label`` column, optional ``fold`` and ``condition``, genes.

    What ``pertspectra predict`` writes (labels as the first, index column) is accepted as it
    is. A row without ``fold`` (or with an empty one) serves every fold that holds its label
    out.

    Parameters
    ----------
    path
        CSV (or ``.parquet``) file.

    Returns
    -------
    DataFrame with columns ``label``, ``fold`` (float, NaN = every fold), ``condition``
    (string, empty = none), then one float column per gene.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"predictions file {path} not found"
        raise FileNotFoundError(msg)
    table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    if "label" not in table.columns:
        first = table.columns[0]
        if str(first).startswith("Unnamed") or first == "":
            table = table.rename(columns={first: "label"})
        else:
            msg = f"predictions file {path} has no 'label' column (columns: {list(table.columns[:5])})"
            raise ValueError(msg)
    table["label"] = table["label"].astype(str)
    table["fold"] = pd.to_numeric(table["fold"], errors="coerce") if "fold" in table else np.nan
    table["condition"] = table["condition"].fillna("").astype(str) if "condition" in table else ""
    genes = [c for c in table.columns if c not in META_COLUMNS]
    if not genes:
        msg = f"predictions file {path} has no gene columns"
        raise ValueError(msg)
    values = table[genes].apply(pd.to_numeric, errors="coerce")
    if not np.isfinite(values.to_numpy(dtype=float)).all():
        bad = table.loc[~np.isfinite(values.to_numpy(dtype=float)).all(axis=1), "label"]
        msg = f"predictions file {path} has missing or non-numeric values (labels {list(bad[:5])})"
        raise ValueError(msg)
    return pd.concat([table[list(META_COLUMNS)], values], axis=1)


def check_prediction_genes(
    predictions: Mapping[str, pd.DataFrame], genes: Sequence[str], *, source: str = "the data"
) -> None:
    """Refuse, before any fit, predictions that lack genes of the data they are scored on.

    Raises ``ValueError`` naming the predictions, how many of the data's genes they lack and
    examples (extra gene columns are ignored when scoring).
    """
    for name, table in predictions.items():
        columns = set(map(str, table.columns)) - set(META_COLUMNS)
        missing = [str(g) for g in genes if str(g) not in columns]
        if missing:
            extra = sorted(columns - set(map(str, genes)))
            msg = (
                f"predictions {name!r} are for other genes than {source}: they lack "
                f"{len(missing)} of its {len(genes)} genes (e.g. {missing[:5]})"
                + (f" and have {len(extra)} it lacks (e.g. {extra[:5]})" if extra else "")
                + "; predict every gene of the data (its var_names), e.g. with a model fitted on it"
            )
            raise ValueError(msg)


def predictions_for(
    table: pd.DataFrame,
    *,
    name: str,
    fold: int,
    labels: Sequence[str],
    genes: Sequence[str],
    canonical: Callable[[str], str],
) -> pd.DataFrame:
    """The rows of ``table`` predicting ``labels`` in ``fold`` (labels x genes).

    ``canonical`` turns the file's label spellings (``B+A``, ``A+ctrl``) into canonical
    labels. Raises ``KeyError`` naming a held-out label without a prediction or a gene the
    file lacks.
    """
    missing_genes = [g for g in genes if g not in table.columns]
    if missing_genes:
        msg = f"predictions {name!r} lack gene(s) {missing_genes[:5]} ({len(missing_genes)} in all)"
        raise KeyError(msg)
    rows = table[(table["fold"].isna()) | (table["fold"] == fold)].copy()
    rows["label"] = rows["label"].map(canonical)
    # a fold-specific row wins over a row serving every fold
    rows = rows.sort_values("fold", na_position="first").drop_duplicates("label", keep="last")
    rows = rows.set_index("label")
    absent = [lab for lab in labels if lab not in rows.index]
    if absent:
        msg = f"predictions {name!r} have no row for held-out label(s) {absent[:5]} in fold {fold}"
        raise KeyError(msg)
    return rows.loc[list(labels), list(genes)].astype(float)
