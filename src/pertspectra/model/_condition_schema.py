"""Schema of a condition-model folder: ``model.json``'s ``conditions`` entry and the tensor shapes.

The rest of the folder is checked as a one-condition model's (:mod:`pertspectra.model._schema`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._config import ModelConfig


def check_conditions(file: Path, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Schema of ``model.json``'s ``conditions`` entry (a one-line ``ValueError`` naming ``file``)."""
    cond = meta.get("conditions")

    def fail(what: str) -> ValueError:
        return ValueError(f"{file}: 'conditions' {what}; the model folder is corrupt or was edited")

    if not isinstance(cond, dict) or set(cond) != {"names", "labels", "condition_factors", "key"}:
        raise fail("must hold exactly names, labels, condition_factors and key")
    names = cond["names"]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise fail("names must be a non-empty list of strings")
    if len(set(names)) != len(names):
        raise fail("names are not unique")
    labels = cond["labels"]
    if not isinstance(labels, dict) or set(labels) != set(names):
        raise fail("labels must map each condition to its labels")
    known = set(meta["labels"])
    for c, labs in labels.items():
        if not isinstance(labs, list) or not labs or not set(map(str, labs)) <= known:
            raise fail(f"labels[{c[:40]!r}] must list labels of the model")
    k = cond["condition_factors"]
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= 100_000:
        raise fail("condition_factors must be a non-negative integer")
    if not isinstance(cond["key"], str):
        raise fail("key must be a string")
    return cond


def condition_shapes(
    meta: Mapping[str, Any], config: ModelConfig, cond: Mapping[str, Any]
) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor of the condition model ``meta`` describes."""
    C, p, g = len(cond["names"]), len(meta["design_columns"]), len(meta["genes"])
    L0, Lc = int(config.n_factors or 0), int(cond["condition_factors"])
    shapes: dict[str, tuple[int, ...]] = {
        "W": (L0, g), "B": (L0, L0), "kappa": (1,), "gene_scale": (g,),
        "condition_P": (C, p, L0 + Lc), "condition_W": (C, Lc, g), "condition_B": (C, Lc, Lc),
        "condition_kappa": (C,), "condition_gene_scale": (C, g),
    }  # fmt: skip
    if config.on_target:
        shapes["condition_on_target"] = (C, p)
    return shapes
