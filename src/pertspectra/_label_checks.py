"""Checks of the raw perturbation labels, made on ``obs`` alone before any pass over the values.

Errors (a label that cannot be read one way only):

- a missing (NaN/None) or empty label;
- two spellings of one label that differ only in whitespace (``" STAT1"`` and ``"STAT1"``):
  each label must be spelled one way (surrounding whitespace alone is stripped silently);
- a label with an empty target (``"A+"``).

Warnings (the fit runs, but probably not as meant), logged on ``pertspectra.design``:

- labels that name cells without a (single) guide, such as ``none_detected``, ``unassigned``,
  ``multiplet`` or ``doublet`` (:data:`NO_GUIDE_NAMES`), fitted as perturbations;
- ``exclude_labels`` that match no label (a typo would fit the cells meant to be dropped);
- labels that differ only in letter case (``STAT1`` and ``Stat1``), fitted as two perturbations;
- combinations whose members never occur alone: under ``encoding="gene"`` a member's effect is
  then inferred from combinations only, and members that only ever occur together cannot be
  told apart. This is a warning, not an error: the labels present are fitted correctly and such
  screens are legitimate (the Norman subset of PerturBench has 10 of 15 doubles without both
  singles); only predictions of those members alone or in new combinations are not identified.

:func:`quiet_label_warnings` turns the warnings into debug records for a block, for callers that
compute statistics on subsets of cells already checked as a whole (the folds of ``evaluate``).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import ParamSpec, Protocol, TypeVar

import pandas as pd

from ._keys import CTRL


class LabelParser(Protocol):
    """What the checks use of :class:`pertspectra.design.LabelParser`."""

    @property
    def separator(self) -> str: ...

    @property
    def controls(self) -> tuple[str, ...]: ...

    def tokens(self, label: object) -> tuple[str, ...]: ...

    def canonical(self, label: object) -> str: ...


logger = logging.getLogger("pertspectra.design")

#: Labels of cells without a usable guide, compared lower-case with every character other than a
#: letter or digit removed (``"None detected"``, ``"none_detected"`` and ``"NONE-DETECTED"`` match).
NO_GUIDE_NAMES: frozenset[str] = frozenset(
    {
        "nonedetected",
        "noguide",
        "noguides",
        "noguidedetected",
        "nogrna",
        "nosgrna",
        "unassigned",
        "notassigned",
        "multiplet",
        "multiplets",
        "multiple",
        "doublet",
        "doublets",
        "nocall",
        "unknown",
        "undetermined",
        "ambiguous",
        "negative",
        "unmapped",
        "blank",
        "none",
        "nan",
        "na",
        "null",
    }
)

_QUIET: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "pertspectra_quiet_label_warnings", default=False
)
_SHOWN = 5
P = ParamSpec("P")
R = TypeVar("R")


@contextlib.contextmanager
def quiet_label_warnings() -> Iterator[None]:
    """Log the label warnings of the block at debug level (errors are raised as always)."""
    token = _QUIET.set(True)
    try:
        yield
    finally:
        _QUIET.reset(token)


def quietly(func: Callable[P, R]) -> Callable[P, R]:
    """``func`` run inside :func:`quiet_label_warnings` (for statistics of subsets of cells)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with quiet_label_warnings():
            return func(*args, **kwargs)

    return wrapper


def warn(msg: str) -> None:
    """Log ``msg`` as a warning, or at debug level inside :func:`quiet_label_warnings`."""
    logger.log(logging.DEBUG if _QUIET.get() else logging.WARNING, "%s", msg)


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _shown(items: list[str], n: int = _SHOWN) -> str:
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def check_raw_labels(raw: pd.Series, *, column: str) -> None:
    """Raise on missing, empty or whitespace-variant labels.

    Parameters
    ----------
    raw
        One raw label per cell (object dtype; NaN allowed, it is reported).
    column
        What the labels come from, for the message (``"obs['perturbation']"``).

    Raises
    ------
    ValueError
        Naming the column, the number of cells and (for variants) the spellings.
    """
    missing = raw.isna().to_numpy()
    if missing.any():
        first = raw.index[missing][:3].tolist()
        msg = (
            f"{int(missing.sum())} cell(s) have a missing (NaN) perturbation label in {column} "
            f"(first: {first}); give them a label, or drop them "
            "(e.g. adata = adata[adata.obs[key].notna()].copy())"
        )
        raise ValueError(msg)
    counts = raw.astype(str).value_counts(sort=False)
    empty = [str(v) for v in counts.index if not str(v).strip()]
    if empty:
        n = int(counts[empty].sum())
        msg = (
            f"{n} cell(s) have an empty perturbation label in {column} (spelled "
            f"{', '.join(map(repr, empty))}); give them a label, or drop them "
            "(or name the empty label in exclude_labels / --exclude-labels)"
        )
        raise ValueError(msg)
    spellings: dict[str, list[str]] = defaultdict(list)
    for value in counts.index:
        spellings[_squash(str(value))].append(str(value))
    variants = [v for v in spellings.values() if len(v) > 1]
    if variants:
        shown = "; ".join(
            " and ".join(f"{s!r} ({int(counts[s])} cells)" for s in group)
            for group in variants[:_SHOWN]
        )
        msg = (
            f"{column} spells {len(variants)} label(s) in ways that differ only in whitespace: "
            f"{shown}; give each label one spelling "
            "(e.g. adata.obs[key] = adata.obs[key].str.strip()) and run again"
        )
        raise ValueError(msg)


def canonical_map(labels: Iterable[str], parser: LabelParser, *, column: str) -> dict[str, str]:
    """Each raw label -> its canonical label; a label that cannot be parsed names ``column``."""
    out = {}
    for label in labels:
        try:
            out[label] = parser.canonical(label)
        except ValueError as err:
            msg = f"{column}: {err}; fix the label, or exclude it with exclude_labels"
            raise ValueError(msg) from None
    return out


def is_no_guide(label: str, parser: LabelParser) -> bool:
    """Whether ``label`` (or one of its targets) names cells without a usable guide."""
    names = [label, *str(label).split(parser.separator)]
    return any(re.sub(r"[^0-9a-z]", "", n.lower()) in NO_GUIDE_NAMES for n in names)


def label_warnings(
    raw: pd.Series,
    mapping: dict[str, str],
    kept: Iterable[str],
    *,
    parser: LabelParser,
    exclude_labels: Iterable[str],
    column: str,
) -> dict[str, list[str]]:
    """Warn about labels that are probably fitted other than meant; return what was found.

    Parameters
    ----------
    raw
        Raw labels per cell, as strings.
    mapping
        Raw label (not excluded) -> canonical label.
    kept
        Canonical labels kept for the fit (control included).
    parser
        The label conventions.
    exclude_labels
        The labels excluded on request.
    column
        What the labels come from, for the message.

    Returns
    -------
    ``{"no_guide_labels": raw labels, "combinations_without_singles": canonical combinations,
    "never_alone": perturbations seen only in combinations}``.
    """
    kept = sorted(str(k) for k in kept)
    kept_set = set(kept)
    present = set(raw.unique())
    unmatched = [str(e) for e in exclude_labels if str(e) not in present]
    if unmatched:
        warn(
            f"exclude_labels {unmatched} match no label in {column}; check the spelling "
            f"(labels seen: {_shown(sorted(present), 8)})"
        )

    no_guide = sorted(
        r for r, c in mapping.items() if c in kept_set and c != CTRL and is_no_guide(c, parser)
    )
    if no_guide:
        n = int(raw.isin(no_guide).sum())
        flags = ",".join(no_guide)
        warn(
            f"label(s) {no_guide} in {column} ({n} cells) look like cells without a single "
            "usable guide (no guide detected, unassigned, multiplet, ...) but are fitted as "
            f"perturbations: exclude them with --exclude-labels {flags} "
            f"(exclude_labels={no_guide}), or name them with --control if they are controls"
        )

    by_case: dict[str, list[str]] = defaultdict(list)
    for label in kept:
        by_case[label.lower()].append(label)
    cased = [v for v in by_case.values() if len(v) > 1]
    if cased:
        shown = "; ".join(" and ".join(map(repr, v)) for v in cased[:_SHOWN])
        warn(
            f"label(s) in {column} differ only in letter case ({shown}) and are fitted as "
            "different perturbations (targets match exactly); if they are one perturbation, "
            "give them one spelling"
        )

    toks = {lab: parser.tokens(lab) for lab in kept}
    singles = {t[0] for t in toks.values() if len(t) == 1}
    combos = {lab: [g for g in t if g not in singles] for lab, t in toks.items() if len(t) > 1}
    combos = {lab: alone for lab, alone in combos.items() if alone}
    never_alone = sorted({g for alone in combos.values() for g in alone})
    if combos:
        occurs: dict[str, frozenset[str]] = {
            g: frozenset(lab for lab, t in toks.items() if g in t) for g in never_alone
        }
        together: dict[frozenset[str], list[str]] = defaultdict(list)
        for g, labs in occurs.items():
            together[labs].append(g)
        tied = [g for g in together.values() if len(g) > 1]
        shown = _shown([f"{lab} (never alone: {', '.join(a)})" for lab, a in combos.items()])
        tied_text = (
            "; " + ", ".join(" and ".join(g) for g in tied[:_SHOWN]) + " only ever occur "
            "together and cannot be told apart"
            if tied
            else ""
        )
        warn(
            f"{len(combos)} combination(s) in {column} have targets never seen alone: {shown}; "
            "with encoding='gene' (the default) their effects are inferred from combinations "
            f"only{tied_text}: predictions of them alone or in new combinations are not "
            "identified. Add their single-perturbation cells, or fit each label as it is with "
            "encoding='label' (--encoding label)"
        )
    return {
        "no_guide_labels": no_guide,
        "combinations_without_singles": list(combos),
        "never_alone": never_alone,
    }


def check_kept(
    counts: pd.Series,
    min_cells: int,
    *,
    parser: LabelParser,
    column: str,
    seen: Iterable[object],
    excluded: Iterable[str],
) -> None:
    """Raise unless some label and the control have ``min_cells`` cells (``counts``: per label)."""
    if counts.empty:
        msg = f"every cell's label in {column} is excluded by exclude_labels {sorted(excluded)}"
        raise ValueError(msg)
    if (counts < min_cells).all():
        top = f"; the largest, {counts.index[0]!r}, has {int(counts.iloc[0])}"
        msg = (
            f"no label has at least min_cells={min_cells} cells{top}; lower min_cells (--min-cells)"
        )
        raise ValueError(msg)
    n_control = int(counts.get(CTRL, 0))
    if n_control < min_cells:
        msg = no_control_message(
            parser, column=column, seen=seen, min_cells=min_cells, n_control=n_control
        )
        raise ValueError(msg)


def no_control_message(
    parser: LabelParser, *, column: str, seen: Iterable[object], min_cells: int, n_control: int
) -> str:
    """The message for a screen without (enough) control cells."""
    shown = _shown([str(s) for s in seen], 8)
    if n_control:
        return (
            f"no control cells: the control label(s) in {column} have {n_control} cell(s), "
            f"below min_cells={min_cells}; lower min_cells (--min-cells)"
        )
    return (
        f"no control cells: no label in {column} matches the control names "
        f"{list(parser.controls)}; name the control label with --control NAME "
        f"(controls=[NAME]) (labels seen: {shown})"
    )
