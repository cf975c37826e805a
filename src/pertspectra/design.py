"""Perturbation labels to the fixed binary design matrix ``H``.

A cell's label (``"A+B"``, ``"A+ctrl"``, ``"ctrl+A"``, ``"non-targeting"``...) is parsed into
a set of perturbation tokens. Tokens match exactly (never substrings) and labels are made
canonical (sorted tokens joined by ``+``, controls dropped), so ``"B+A"`` and ``"A+B"`` are one
label, ``"A+ctrl"`` is ``"A"``, and every control alias is :data:`CONTROL_LABEL` (``"ctrl"``).

Two encodings of the design row ``h`` of a canonical label are supported:

- ``"gene"`` (default, as the authors): one column per perturbed gene; a double has two ones;
- ``"label"``: one column per distinct non-control label (cannot predict unseen labels);

followed by ``ctrl`` (1 for control cells) and ``basal`` (1 for every cell).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._keys import BASAL, CTRL
from ._label_checks import canonical_map, check_kept, check_raw_labels, label_warnings

if TYPE_CHECKING:
    from ._types import Encoding

logger = logging.getLogger(__name__)

#: Canonical label of control cells.
CONTROL_LABEL = CTRL
#: Control names recognised by default (case-insensitive).
DEFAULT_CONTROLS: tuple[str, ...] = (
    "ctrl",
    "control",
    "non-targeting",
    "non_targeting",
    "nontargeting",
    "NT",
    "safe-targeting",
)


@dataclass(frozen=True)
class LabelParser:
    """Parse raw perturbation labels into canonical labels.

    Parameters
    ----------
    separator
        String that joins the targets of a combination (``"+"``).
    controls
        Names of control tokens, compared case-insensitively. ``"ctrl"`` is always a control.
    """

    separator: str = "+"
    controls: tuple[str, ...] = DEFAULT_CONTROLS

    def __post_init__(self) -> None:
        if not self.separator:
            msg = "separator must be a non-empty string"
            raise ValueError(msg)
        object.__setattr__(
            self, "controls", tuple(dict.fromkeys([*(c.strip() for c in self.controls), CTRL]))
        )

    @property
    def _control_set(self) -> frozenset[str]:
        return frozenset(c.lower() for c in self.controls)

    def tokens(self, label: object) -> tuple[str, ...]:
        """Sorted, de-duplicated perturbation tokens of ``label`` (``()`` for a control)."""
        if label is None or (isinstance(label, float) and np.isnan(label)):
            msg = "perturbation label is missing (NaN/None)"
            raise ValueError(msg)
        text = str(label).strip()
        if not text:
            msg = "perturbation label is an empty string"
            raise ValueError(msg)
        controls = self._control_set
        if text.lower() in controls:
            return ()
        parts = [p.strip() for p in text.split(self.separator)]
        if any(not p for p in parts):
            msg = f"perturbation label {text!r} has an empty target around {self.separator!r}"
            raise ValueError(msg)
        return tuple(sorted({p for p in parts if p.lower() not in controls}))

    def canonical(self, label: object) -> str:
        """Canonical form of ``label``: sorted targets joined by the separator, or ``"ctrl"``."""
        toks = self.tokens(label)
        return self.separator.join(toks) if toks else CONTROL_LABEL

    def unmatched_controls(self, labels: Iterable[object], controls: Iterable[str]) -> list[str]:
        """The names in ``controls`` that match no token of any label in ``labels``."""
        seen: set[str] = set()
        for label in labels:
            text = str(label).strip()
            seen.add(text.lower())
            seen.update(p.strip().lower() for p in text.split(self.separator))
        return [c for c in controls if c.strip().lower() not in seen]

    def is_control(self, label: object) -> bool:
        """Whether ``label`` denotes control cells."""
        return not self.tokens(label)


@dataclass
class Design:
    """The design: its columns and the design row of every known canonical label.

    Attributes
    ----------
    columns
        Design column names; the last two are ``"ctrl"`` and ``"basal"``.
    labels
        Canonical label -> the design columns set to 1 (``basal`` included).
    encoding
        ``"gene"`` or ``"label"``.
    parser
        The :class:`LabelParser` used for the labels.
    """

    columns: list[str]
    labels: dict[str, list[str]]
    encoding: Encoding = "gene"
    parser: LabelParser = field(default_factory=LabelParser)

    @property
    def n_perturbations(self) -> int:
        """Number of perturbation columns (all but ``ctrl`` and ``basal``)."""
        return len(self.columns) - 2

    def __post_init__(self) -> None:
        if self.columns[-2:] != [CTRL, BASAL]:
            msg = f"design columns must end with {CTRL!r}, {BASAL!r}; got {self.columns[-2:]}"
            raise ValueError(msg)
        self._index = {c: i for i, c in enumerate(self.columns)}
        if len(self._index) != len(self.columns):
            msg = "design column names are not unique"
            raise ValueError(msg)

    @property
    def perturbations(self) -> list[str]:
        """Design columns other than ``ctrl`` and ``basal``."""
        return self.columns[:-2]

    def columns_of(self, label: object) -> list[str]:
        """Design columns set to 1 for ``label`` (any spelling of a seen label or combination).

        Raises
        ------
        KeyError
            When the label contains a perturbation the design has no column for, or, under the
            ``"label"`` encoding, when the label itself was not seen.
        """
        canon = self.parser.canonical(label)
        if canon in self.labels:
            return list(self.labels[canon])
        if self.encoding == "label":
            msg = (
                f"label {canon!r} was not seen in training; the 'label' encoding (one design "
                "column per label) cannot predict unseen labels, use encoding='gene'"
            )
            raise KeyError(msg)
        toks = self.parser.tokens(label)
        unknown = [t for t in toks if t not in self._index or t in (CTRL, BASAL)]
        if unknown:
            msg = f"unknown perturbation(s) {unknown} in label {str(label)!r}: not seen in training"
            raise KeyError(msg)
        return [*toks, BASAL]

    def row(self, label: object) -> np.ndarray:
        """The binary design row of ``label``."""
        h = np.zeros(len(self.columns))
        h[[self._index[c] for c in self.columns_of(label)]] = 1.0
        return h

    def matrix(self, labels: Iterable[object]) -> np.ndarray:
        """Stack the design rows of ``labels`` (labels x columns)."""
        rows = [self.row(lab) for lab in labels]
        return np.vstack(rows) if rows else np.zeros((0, len(self.columns)))

    def to_dict(self) -> dict[str, object]:
        """JSON-serialisable description (used in ``model.json``)."""
        return {
            "design_columns": list(self.columns),
            "labels": {k: list(v) for k, v in self.labels.items()},
            "encoding": self.encoding,
            "separator": self.parser.separator,
            "controls": list(self.parser.controls),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> Design:
        """Inverse of :meth:`to_dict`."""
        parser = LabelParser(
            separator=str(d.get("separator", "+")),
            controls=tuple(_iterable(d.get("controls", DEFAULT_CONTROLS), "controls")),
        )
        labels = d["labels"]
        if not isinstance(labels, Mapping):
            msg = f"design field 'labels' must be a mapping, got {type(labels).__name__}"
            raise TypeError(msg)
        return cls(
            columns=list(_iterable(d["design_columns"], "design_columns")),
            labels={str(k): list(_iterable(v, f"labels[{k!r}]")) for k, v in labels.items()},
            encoding=_encoding(str(d.get("encoding", "gene"))),
            parser=parser,
        )


def _iterable(value: object, what: str) -> Iterable[Any]:
    """``value`` if it is iterable (a list read back from JSON), else a clear ``TypeError``."""
    if not isinstance(value, Iterable):
        msg = f"design field {what!r} must be a list, got {type(value).__name__}"
        raise TypeError(msg)
    return value


def _encoding(value: str) -> Encoding:
    """``value`` as an :data:`Encoding`, else a clear ``ValueError``."""
    if value == "gene":
        return "gene"
    if value == "label":
        return "label"
    msg = f"design field 'encoding' must be 'gene' or 'label', got {value!r}"
    raise ValueError(msg)


@dataclass
class LabelSummary:
    """What :func:`canonical_labels` kept and dropped."""

    n_cells: pd.Series
    dropped_small: pd.Series
    excluded: pd.Series
    #: What :func:`canonical_labels` warned about (see :mod:`pertspectra._label_checks`).
    findings: dict[str, list[str]] = field(default_factory=dict)

    def describe(self) -> str:
        """One human-readable paragraph."""
        parts = [f"{len(self.n_cells)} labels kept ({int(self.n_cells.sum())} cells)"]
        if len(self.excluded):
            parts.append(
                f"excluded {len(self.excluded)} label(s) on request "
                f"({int(self.excluded.sum())} cells): {', '.join(map(str, self.excluded.index[:10]))}"
            )
        if len(self.dropped_small):
            shown = ", ".join(f"{k} ({v})" for k, v in self.dropped_small.head(10).items())
            more = (
                "" if len(self.dropped_small) <= 10 else f" and {len(self.dropped_small) - 10} more"
            )
            parts.append(
                f"dropped {len(self.dropped_small)} label(s) below min_cells "
                f"({int(self.dropped_small.sum())} cells): {shown}{more}"
            )
        return "; ".join(parts)


def control_parser(
    labels: Iterable[object],
    *,
    controls: Iterable[str] | None = None,
    separator: str = "+",
    column: str = "labels",
) -> LabelParser:
    """The :class:`LabelParser` for ``controls``, checked against the labels present.

    Parameters
    ----------
    labels
        The distinct raw labels present (NaN ignored).
    controls
        ``None``: the built-in control names (:data:`DEFAULT_CONTROLS`), no check. Names given
        explicitly replace the built-in ones and must each match some label.
    separator
        Separator of combined targets.
    column
        What ``labels`` come from, for the error message (``"obs['target']"``).

    Returns
    -------
    The parser.

    Raises
    ------
    ValueError
        When ``controls`` is empty, or names a control that matches no label.
    """
    explicit = controls is not None
    names = tuple(DEFAULT_CONTROLS if controls is None else controls)
    if explicit and not names:
        msg = "controls is empty: name the control label(s), or pass None for the built-in names"
        raise ValueError(msg)
    parser = LabelParser(separator=separator, controls=names)
    if explicit:
        values = [v for v in labels if not pd.isna(v)]
        missing = parser.unmatched_controls(values, names)
        if missing:
            shown = ", ".join(map(str, values[:8]))
            msg = (
                f"control label(s) {missing} match no label in {column} (labels seen: {shown}, "
                "...); check the spelling"
            )
            raise ValueError(msg)
    return parser


def canonical_labels(
    labels: Sequence[object] | pd.Series,
    *,
    parser: LabelParser | None = None,
    exclude_labels: Iterable[str] = (),
    min_cells: int = 50,
    column: str = "labels",
) -> tuple[pd.Series, LabelSummary]:
    """Canonicalise per-cell labels, drop excluded and rare labels, check what is left.

    Surrounding whitespace is stripped; the errors and warnings are listed in
    :mod:`pertspectra._label_checks`.

    Parameters
    ----------
    labels
        One raw label per cell.
    parser
        Label conventions; default :class:`LabelParser`.
    exclude_labels
        Raw labels that are neither perturbations nor controls (e.g. ``none_detected``).
    min_cells
        Labels with fewer cells (after canonicalisation) are dropped, as the authors do.
    column
        What the labels come from, for messages (``"obs['perturbation']"``).

    Returns
    -------
    A categorical series of canonical labels aligned with ``labels`` (NaN for dropped cells),
    and a :class:`LabelSummary`.

    Raises
    ------
    ValueError
        On a bad label, no control cells, or no label with ``min_cells`` cells.
    """
    parser = parser or LabelParser()
    raw = labels if isinstance(labels, pd.Series) else pd.Series(labels, dtype=object)
    check_raw_labels(raw, column=column)
    raw = raw.reset_index(drop=True).astype(str)
    excl = {str(e) for e in exclude_labels}
    is_excl = raw.isin(excl)
    uniq = pd.unique(raw[~is_excl])
    mapping = canonical_map(uniq, parser, column=column)
    canon = raw.map(mapping)  # NaN where excluded
    counts = canon.value_counts()
    small = counts[counts < min_cells]
    keep = counts[counts >= min_cells]
    canon = canon.where(canon.isin(keep.index))
    excluded = raw[is_excl].value_counts()
    check_kept(counts, min_cells, parser=parser, column=column, seen=uniq, excluded=excl)
    findings = label_warnings(
        raw, mapping, keep.index, parser=parser, exclude_labels=sorted(excl), column=column
    )
    order = [CONTROL_LABEL, *sorted(k for k in keep.index if k != CONTROL_LABEL)]
    cat = pd.Categorical(canon, categories=order)
    summary = LabelSummary(
        n_cells=keep.reindex(order).astype(int),
        dropped_small=small.astype(int),
        excluded=excluded.astype(int),
        findings=findings,
    )
    return pd.Series(cat, index=pd.Series(labels).index, name="label"), summary


def build_design(
    labels: Iterable[str], *, encoding: Encoding = "gene", parser: LabelParser | None = None
) -> Design:
    """Build the design for a set of canonical labels.

    Parameters
    ----------
    labels
        Canonical labels (as produced by :func:`canonical_labels`), control included.
    encoding
        ``"gene"``: one column per perturbed gene; ``"label"``: one column per label.
    parser
        The label conventions the labels were made with.
    """
    parser = parser or LabelParser()
    labels = list(dict.fromkeys(labels))
    if encoding not in ("gene", "label"):
        msg = f"encoding must be 'gene' or 'label', got {encoding!r}"
        raise ValueError(msg)
    pert_labels = [lab for lab in labels if lab != CONTROL_LABEL]
    if encoding == "gene":
        genes = sorted({t for lab in pert_labels for t in parser.tokens(lab)})
        clash = [g for g in genes if g in (CTRL, BASAL)]
        if clash:
            msg = f"perturbation names {clash} clash with the reserved design columns"
            raise ValueError(msg)
        columns = [*genes, CTRL, BASAL]
        rows = {lab: [*parser.tokens(lab), BASAL] for lab in pert_labels}
    else:
        columns = [*sorted(pert_labels), CTRL, BASAL]
        rows = {lab: [lab, BASAL] for lab in pert_labels}
    if CONTROL_LABEL in labels:
        rows = {CONTROL_LABEL: [CTRL, BASAL], **rows}
    return Design(columns=columns, labels=rows, encoding=encoding, parser=parser)
