"""One palette for every figure: method kinds, diverging and sequential colour maps.

A method is of one of three kinds: the ``model`` (pertspectra and any other fitted model or
user prediction), a ``baseline`` (``control``, ``mean``, ``additive``, ``training_mean``) or
the ``ceiling`` (the noise ceiling: what a perfect model could reach given the sampling noise).
"""

from __future__ import annotations

from typing import Literal

from pertspectra.evaluate._summary import BASELINES, CEILING

MethodKind = Literal["model", "baseline", "ceiling"]

#: Colour of each kind of method (boxes, points, bars).
METHOD_COLORS: dict[str, str] = {
    "model": "#1f77b4",  # blue
    "baseline": "#8c8c8c",  # grey
    "ceiling": "#2ca02c",  # green
}
#: Colours of the observed / additive / predicted profiles of a perturbation.
PROFILE_COLORS: dict[str, str] = {
    "observed": "#222222",
    "additive": "#8c8c8c",
    "predicted": METHOD_COLORS["model"],
}
#: Colour for reference lines (y = x, zero, chance).
REFERENCE_COLOR = "#999999"
#: Diverging colour map for signed values (centred at 0, or at 0.5 for win rates).
DIVERGING = "RdBu_r"
#: Sequential colour map for non-negative values (loadings).
SEQUENTIAL = "viridis"
#: Qualitative colour map for categories (labels, clusters, embeddings).
QUALITATIVE = "tab10"


def method_kind(method: str) -> MethodKind:
    """Kind of ``method``: ``"ceiling"``, ``"baseline"`` or ``"model"`` (anything else)."""
    if method == CEILING:
        return "ceiling"
    if method in BASELINES:
        return "baseline"
    return "model"


def method_order(methods: list[str], *, first: str | None = None) -> list[str]:
    """Models first (``first`` leading, the others sorted), then baselines, ceiling last."""
    models = sorted(m for m in methods if method_kind(m) == "model")
    if first is not None and first in models:
        models = [first, *(m for m in models if m != first)]
    baselines = [b for b in BASELINES if b in methods]
    baselines += sorted(m for m in methods if method_kind(m) == "baseline" and m not in baselines)
    ceiling = [CEILING] if CEILING in methods else []
    return [*models, *baselines, *ceiling]


def category_colors(n: int) -> list[tuple[float, float, float, float]]:
    """``n`` distinguishable colours (tab10, then tab20, then a cycle of tab20)."""
    from matplotlib import colormaps

    cmap = colormaps[QUALITATIVE] if n <= 10 else colormaps["tab20"]
    size = 10 if n <= 10 else 20
    return [cmap(i % size) for i in range(n)]
