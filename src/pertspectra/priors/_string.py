r"""Read STRING networks and recombine their evidence channels.

STRING scores every channel ``c`` of a protein pair on 0-1000. The combined score removes the
random-pair prior ``p = 0.041`` from each channel, combines the channels as independent
evidence and puts the prior back once:

.. math::

    s'_c = \max\left(0, \frac{s_c / 1000 - p}{1 - p}\right), \qquad
    S = 1 - \prod_c (1 - s'_c), \qquad
    \text{combined} = \lfloor 1000\,(S (1 - p) + p) \rfloor .

A channel's ``_transferred`` part (evidence transferred from other organisms) enters as one
more factor of the product, i.e. ``1 - (1 - s'_c)(1 - s'_{c,transferred})`` is the channel's
score, and the ``homology`` column, where present, is not a channel: it scales the
co-occurrence and text-mining scores down by ``(1 - s'_homology)`` (STRING's
``combine_subscores.py``). On the shared symbol table this rule reproduces ``combined_score``
exactly for 99.75% of rows and within 1 for 99.99%.

Files read: ``protein.links[.detailed|.full].v12.0.txt.gz`` (space-separated, ids such as
``9606.ENSP00000000233``) together with ``protein.info.v12.0.txt.gz`` for id -> symbol, tables
with ``symbol_a``/``symbol_b`` and the same score columns, and the TSV of STRING's web API
(``preferredName_A``, ``escore``, ..., on 0-1). Large files are streamed in chunks and only
rows whose two ends are wanted (and whose score passes the threshold) are kept.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ._files import CHUNKSIZE, read_header, split_header

logger = logging.getLogger(__name__)

#: Minimum score (0-1) of a STRING edge by default: STRING's "high confidence".
DEFAULT_MIN_SCORE = 0.7

#: STRING's prior probability of a random protein pair being linked.
STRING_PRIOR = 0.041

#: Evidence channels, each possibly with a ``_transferred`` column.
CHANNELS = (
    "neighborhood",
    "fusion",
    "cooccurence",
    "coexpression",
    "experiments",
    "database",
    "textmining",
)
_HOMOLOGY_CORRECTED = ("cooccurence", "textmining")
_ALIASES = {
    "experimental": "experiments",
    "experiment": "experiments",
    "cooccurrence": "cooccurence",
    "text_mining": "textmining",
    "neighbourhood": "neighborhood",
}
# STRING web API (network endpoint): per-channel scores on 0-1
_API_COLUMNS = {
    "nscore": "neighborhood",
    "fscore": "fusion",
    "pscore": "cooccurence",
    "ascore": "coexpression",
    "escore": "experiments",
    "dscore": "database",
    "tscore": "textmining",
    "score": "combined_score",
}
ENDS = (("protein1", "protein2"), ("symbol_a", "symbol_b"), ("preferredName_A", "preferredName_B"))


@dataclass
class StringRead:
    """Edges read from a STRING file, the names the file knows, and provenance."""

    edges: pd.DataFrame
    names: frozenset[str]
    info: dict[str, object] = field(default_factory=dict)


def _canonical_channel(name: str) -> str:
    low = name.strip().lower()
    base, transferred = (
        (low[: -len("_transferred")], True) if low.endswith("_transferred") else (low, False)
    )
    base = _ALIASES.get(base, base)
    return f"{base}_transferred" if transferred else base


def parse_channels(channels: str | Iterable[str] | None) -> list[str] | None:
    """Validate a channel selection (``"experiments,database"`` or a list).

    A plain channel name selects the channel with its ``_transferred`` part; a name ending in
    ``_transferred`` selects that part alone. ``experimental`` and ``cooccurrence`` are
    accepted for ``experiments`` and ``cooccurence``.
    """
    if channels is None:
        return None
    items = channels.split(",") if isinstance(channels, str) else list(channels)
    out = [_canonical_channel(c) for c in items if str(c).strip()]
    if not out:
        msg = "channels is empty; give e.g. 'experiments,database' or leave it unset"
        raise ValueError(msg)
    for c in out:
        if c == "homology":
            msg = "'homology' is not an evidence channel (STRING uses it to correct co-occurrence and text mining)"
            raise ValueError(msg)
        if c.removesuffix("_transferred") not in CHANNELS:
            msg = f"unknown STRING channel {c!r}; choose from {', '.join(CHANNELS)}"
            raise ValueError(msg)
    return list(dict.fromkeys(out))


def _prior_corrected(score: np.ndarray) -> np.ndarray:
    s = np.asarray(score, dtype=np.float64) / 1000.0
    return np.clip((s - STRING_PRIOR) / (1.0 - STRING_PRIOR), 0.0, None)


def _selected_columns(channels: list[str], available: Iterable[str]) -> dict[str, list[str]]:
    available = set(available)
    groups: dict[str, list[str]] = {}
    for c in channels:
        base = c.removesuffix("_transferred")
        cols = [c] if c.endswith("_transferred") else [base, f"{base}_transferred"]
        groups.setdefault(base, []).extend(col for col in cols if col in available)
    missing = [c for c in channels if not groups.get(c.removesuffix("_transferred"))]
    if missing:
        msg = f"channel(s) {missing} not in the file (columns: {sorted(available)})"
        raise ValueError(msg)
    return groups


def combined_score(
    scores: Mapping[str, np.ndarray] | pd.DataFrame,
    channels: str | Iterable[str] | None = None,
) -> np.ndarray:
    """STRING's combined score (0-1000, integer-valued) from per-channel scores.

    Parameters
    ----------
    scores
        Per-channel scores on 0-1000, keyed by STRING's column names (``experiments``,
        ``experiments_transferred``, ..., optionally ``homology``).
    channels
        Channels to combine; ``None`` combines every channel present.

    Returns
    -------
    Float array of integer-valued scores, truncated as STRING does.
    """
    cols = {_canonical_channel(k): k for k in scores}
    chosen = parse_channels(channels) or [
        c for c in CHANNELS if c in cols or f"{c}_transferred" in cols
    ]
    groups = _selected_columns(chosen, cols)
    n = len(np.asarray(scores[next(iter(scores))]))
    homology = _prior_corrected(scores[cols["homology"]]) if "homology" in cols else None
    one_minus = np.ones(n)
    for base, group in groups.items():
        keep = np.ones(n)
        for col in dict.fromkeys(group):
            keep *= 1.0 - _prior_corrected(scores[cols[col]])
        s = 1.0 - keep
        if homology is not None and base in _HOMOLOGY_CORRECTED:
            s = s * (1.0 - homology)
        one_minus *= 1.0 - s
    combined = (1.0 - one_minus) * (1.0 - STRING_PRIOR) + STRING_PRIOR
    return np.floor(combined * 1000.0)  # int() truncation, as STRING (no epsilon: matches its ties)


def _version(path: Path) -> str:
    m = re.search(r"v(\d+(?:\.\d+)?)", path.name)
    return m.group(1) if m else ""


def read_string_info(path: str | Path) -> dict[str, str]:
    """Map STRING protein ids to preferred names from ``protein.info.v12.0.txt.gz``."""
    path = Path(path)
    header, sep = split_header(read_header(path))
    header = [h.lstrip("#") for h in header]
    if "string_protein_id" not in header or "preferred_name" not in header:
        msg = f"{path} is not a STRING protein.info file (header {header[:4]})"
        raise ValueError(msg)
    info = pd.read_csv(
        path, sep=sep, usecols=[0, header.index("preferred_name")], dtype=str, quoting=3
    )
    info.columns = ["id", "name"]
    return dict(zip(info["id"], info["name"], strict=True))


def _find_info(path: Path) -> Path:
    m = re.match(r"(\d+\.)?protein\.links(?:\.detailed|\.full)?(\..+)$", path.name)
    if m:
        cand = path.with_name(f"{m.group(1) or ''}protein.info{m.group(2)}")
        if cand.is_file():
            return cand
    msg = f"{path} holds STRING protein ids: pass the matching protein.info file (info=...)"
    raise ValueError(msg)


def _chunks(path: Path, sep: str, usecols: list[str], dtypes: dict) -> Iterator[pd.DataFrame]:
    yield from pd.read_csv(
        path,
        sep=sep,
        usecols=usecols,
        dtype=dtypes,
        chunksize=CHUNKSIZE,
        engine="c",
        quoting=3,
        na_filter=False,
    )


def read_string_detailed(
    path: str | Path,
    *,
    info: str | Path | None = None,
    min_score: float = DEFAULT_MIN_SCORE,
    channels: str | Iterable[str] | None = None,
    genes: Iterable[str] | None = None,
) -> StringRead:
    """Like :func:`read_string`, also returning the file's names and provenance."""
    path = Path(path)
    if not 0.0 <= float(min_score) <= 1.0:
        msg = f"min_score={min_score} is on STRING's 0-1 scale (a file score of 700 is 0.7)"
        raise ValueError(msg)
    chosen = parse_channels(channels)
    raw_header, sep = split_header(read_header(path))
    renamed = {c: _API_COLUMNS.get(c, _canonical_channel(c)) for c in raw_header}
    ends = next((e for e in ENDS if set(e) <= set(raw_header)), None)
    if ends is None:
        msg = (
            f"{path} is not a STRING file (header {raw_header[:6]}); for a plain "
            "source/target/weight list use read_edge_list"
        )
        raise ValueError(msg)
    api_scale = ends[0] == "preferredName_A"
    canon = {renamed[c]: c for c in raw_header if c not in ends}
    if chosen is None:
        if "combined_score" not in canon:
            msg = f"{path} has no combined_score column; choose channels"
            raise ValueError(msg)
        score_cols = ["combined_score"]
    else:
        groups = _selected_columns(chosen, canon)
        score_cols = [c for g in groups.values() for c in g]
        if "homology" in canon and any(b in _HOMOLOGY_CORRECTED for b in groups):
            score_cols.append("homology")
    usecols = [*ends, *(canon[c] for c in dict.fromkeys(score_cols))]
    dtypes = {ends[0]: str, ends[1]: str, **{canon[c]: np.float64 for c in score_cols}}

    id_to_name: dict[str, str] | None = None
    if ends[0] == "protein1":
        info_path = Path(info) if info is not None else _find_info(path)
        id_to_name = read_string_info(info_path)
        names: set[str] = set(id_to_name.values())
    else:
        info_path = None
        names = set()
    wanted = None if genes is None else set(map(str, genes))
    wanted_ids = None
    if wanted is not None and id_to_name is not None:
        wanted_ids = {p for p, g in id_to_name.items() if g in wanted}
    threshold = round(float(min_score) * 1000.0, 6)

    parts, n_rows, n_unmapped = [], 0, 0
    for chunk in _chunks(path, sep, usecols, dtypes):
        n_rows += len(chunk)
        a, b = chunk[ends[0]], chunk[ends[1]]
        if id_to_name is None and genes is not None:
            names.update(pd.unique(a), pd.unique(b))
        elif id_to_name is None:
            names.update(pd.unique(np.concatenate([a.to_numpy(), b.to_numpy()])))
        keys = wanted_ids if wanted_ids is not None else wanted
        if keys is not None:
            mask = a.isin(keys).to_numpy() & b.isin(keys).to_numpy()
            chunk = chunk.loc[mask]
        if chunk.empty:
            continue
        scores = {
            c: np.round(chunk[canon[c]].to_numpy() * 1000.0, 6)
            if api_scale
            else chunk[canon[c]].to_numpy()
            for c in score_cols
        }
        score = scores["combined_score"] if chosen is None else combined_score(scores, chosen)
        keep = score >= threshold
        if not keep.any():
            continue
        src, tgt = chunk[ends[0]].to_numpy()[keep], chunk[ends[1]].to_numpy()[keep]
        if id_to_name is not None:
            src = pd.Series(src).map(id_to_name).to_numpy()
            tgt = pd.Series(tgt).map(id_to_name).to_numpy()
            ok = pd.notna(src) & pd.notna(tgt)
            n_unmapped += int((~ok).sum())
            src, tgt, sc = src[ok], tgt[ok], score[keep][ok]
        else:
            sc = score[keep]
        parts.append(pd.DataFrame({"source": src, "target": tgt, "weight": sc / 1000.0}))
    edges = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(
            {
                "source": pd.Series(dtype=str),
                "target": pd.Series(dtype=str),
                "weight": pd.Series(dtype=float),
            }
        )
    )
    if n_unmapped:
        logger.warning("%d STRING rows had protein ids missing from the info file", n_unmapped)
    logger.info("read %d STRING rows from %s, kept %d", n_rows, path, len(edges))
    prov: dict[str, object] = {
        "file": str(path),
        "format": "string_protein" if id_to_name is not None else "string_symbol",
        "version": _version(path),
        "min_score": float(min_score),
        "channels": chosen if chosen is not None else ["combined_score"],
        "n_rows_read": n_rows,
        "n_rows_kept": len(edges),
    }
    if info_path is not None:
        prov["info_file"] = str(info_path)
    return StringRead(edges=edges, names=frozenset(names), info=prov)


def read_string(
    path: str | Path,
    *,
    info: str | Path | None = None,
    min_score: float = DEFAULT_MIN_SCORE,
    channels: str | Iterable[str] | None = None,
    genes: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Read a STRING network as a tidy edge table.

    Parameters
    ----------
    path
        ``protein.links[.detailed|.full].v12.0.txt(.gz)``, a symbol-level table with
        ``symbol_a``/``symbol_b`` and STRING's score columns, or a STRING web-API TSV.
    info
        ``protein.info.v12.0.txt(.gz)`` mapping protein ids to names; found beside a
        ``protein.links`` file when omitted.
    min_score
        Minimum score on 0-1 (0.7: STRING's "high confidence"; 0.4 "medium").
    channels
        Evidence channels to recombine into the score by STRING's rule (e.g.
        ``"experiments,database"``); ``None`` uses the file's ``combined_score``.
    genes
        Keep only edges whose two ends are among these names (saves memory on big files).

    Returns
    -------
    DataFrame with columns ``source``, ``target`` (gene symbols) and ``weight`` (score / 1000).
    Each row of the file gives one row; both orientations appear when the file lists both.
    """
    res = read_string_detailed(path, info=info, min_score=min_score, channels=channels, genes=genes)
    res.edges.attrs["pertspectra"] = res.info
    return res.edges
