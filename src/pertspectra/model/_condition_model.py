"""A model fitted under several conditions: shared programs, each condition's own, ``P`` per condition.

Each condition is also a one-condition :class:`~pertspectra.model.FittedModel`
(:meth:`ConditionModel.condition`): its ``n_factors + condition_factors`` programs (the shared ones
named ``shared_k``, its own ``<condition>_k``), its loadings and its labels, so prediction,
programs, similarity and the scorecard work per condition with the one-condition code (the
algebra is in :mod:`pertspectra.model._condition_module`).

On disk (a model folder, safetensors + JSON, checked before use as a one-condition model):
``model.safetensors`` holds the shared block under the one-condition names ``W`` (shared
factors x genes), ``B``, ``kappa`` (1) and ``gene_scale`` (genes), and each condition's block
stacked in condition order: ``condition_P`` (conditions x design columns x (shared + own
factors)), ``condition_W`` (conditions x own factors x genes), ``condition_B``,
``condition_kappa`` (conditions), ``condition_gene_scale`` (conditions x genes) and, with the
on-target term, ``condition_on_target`` (conditions x design columns). There is no top-level
``P``: every condition's loadings are kept (the authors' code overwrote its "global" block with
the last condition's). ``model.json`` is a one-condition model's plus ``conditions``:
``names``, ``labels`` (condition -> labels seen there), ``condition_factors`` and ``key``.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .._utils import atomic_path, check_output_folder
from ..design import Design, build_design
from ._condition_schema import check_conditions, condition_shapes
from ._config import ModelConfig
from ._fitted import METADATA, TENSORS, FittedModel, _json_default, _versions, read_model_folder

SHARED = "shared"
_BLOCKS = ("P", "W", "B", "kappa", "gene_scale")


def is_condition_model(path: str | os.PathLike) -> bool:
    """Whether the model folder ``path`` was fitted under several conditions.

    Then load it with :meth:`ConditionModel.load`, else with
    :func:`~pertspectra.model.load_model`. Reads only ``model.json`` (size-bounded); a
    missing or unreadable file gives ``False`` (the loader then reports the defect).
    """
    from . import _schema

    meta = Path(path) / METADATA
    if not meta.is_file() or meta.is_symlink():
        return False
    try:
        data = _schema.read_bytes(
            meta, limit=_schema.MAX_METADATA_BYTES, why="bytes a model.json may have"
        )
        return isinstance(d := json.loads(data), dict) and "conditions" in d
    except (ValueError, RecursionError):
        return False  # FittedModel.load reports the defect


@dataclass
class ConditionModel:
    """Fitted parameters of a screen under several conditions (see the module docstring).

    Attributes
    ----------
    conditions
        Condition names, in the order of the stacked tensors.
    P
        Conditions x design columns x (shared + own factors).
    W, B, kappa, gene_scale
        The shared programs' block.
    W_own, B_own, kappa_own, gene_scale_own
        Each condition's own block (stacked over conditions).
    genes, design, config, training, versions, on_target_genes
        As :class:`~pertspectra.model.FittedModel`; ``design`` holds every label of every
        condition, ``config.n_factors`` the number of shared programs.
    condition_labels
        Condition -> the labels fitted in that condition.
    condition_key
        The ``obs`` column the conditions came from.
    on_target
        Conditions x design columns (``None``: no on-target term).
    """

    FILES: ClassVar[tuple[str, ...]] = FittedModel.FILES
    conditions: list[str]
    P: np.ndarray
    W: np.ndarray
    B: np.ndarray
    kappa: np.ndarray
    gene_scale: np.ndarray
    W_own: np.ndarray
    B_own: np.ndarray
    kappa_own: np.ndarray
    gene_scale_own: np.ndarray
    genes: list[str]
    design: Design
    config: ModelConfig
    condition_labels: dict[str, list[str]]
    condition_key: str = "condition"
    training: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=_versions)
    on_target: np.ndarray | None = None
    on_target_genes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    @property
    def condition_factors(self) -> int:
        """Programs of each condition's own."""
        return int(self.W_own.shape[1])

    def validate(self) -> None:
        """Check names and shapes (and that each condition is a valid one-condition model)."""
        C, p, g = len(self.conditions), len(self.design.columns), len(self.genes)
        L0, Lc = self.W.shape[0], self.condition_factors
        expected = {
            "P": (C, p, L0 + Lc), "W": (L0, g), "B": (L0, L0), "kappa": (1,),
            "gene_scale": (g,), "W_own": (C, Lc, g), "B_own": (C, Lc, Lc),
            "kappa_own": (C,), "gene_scale_own": (C, g),
        }  # fmt: skip
        if self.on_target is not None:
            expected["on_target"] = (C, p)
        for name, shape in expected.items():
            got = tuple(np.shape(getattr(self, name)))
            if got != shape:
                msg = f"model tensor {name!r} has shape {got}, expected {shape}"
                raise ValueError(msg)
            if not np.all(np.isfinite(getattr(self, name))):
                msg = f"model tensor {name!r} contains non-finite values"
                raise ValueError(msg)
        if SHARED in self.conditions:
            msg = f"a condition may not be named {SHARED!r} (the shared programs' name)"
            raise ValueError(msg)
        if len(set(self.conditions)) != C or C < 1:
            msg = f"condition names must be unique and non-empty, got {self.conditions}"
            raise ValueError(msg)
        if set(self.condition_labels) != set(self.conditions):
            msg = f"condition_labels names {sorted(self.condition_labels)}, expected {self.conditions}"
            raise ValueError(msg)
        if self.config.n_factors != L0:
            msg = f"model has {L0} shared factors but its config says {self.config.n_factors}"
            raise ValueError(msg)
        for c in self.conditions:
            self.condition(c)

    def _index(self, condition: str) -> int:
        if condition not in self.conditions:
            msg = f"unknown condition {condition!r}; the model's conditions: {self.conditions}"
            raise KeyError(msg)
        return self.conditions.index(condition)

    def factor_names(self, condition: str) -> list[str]:
        """``shared_0``, ... then ``<condition>_0``, ... (the factors of :meth:`condition`)."""
        return [f"{SHARED}_{i}" for i in range(self.W.shape[0])] + [
            f"{condition}_{i}" for i in range(self.condition_factors)
        ]

    def condition(self, condition: str) -> FittedModel:
        """Condition ``condition`` as a one-condition :class:`~pertspectra.model.FittedModel`.

        Its programs are the shared ones and the condition's own, rescaled jointly (exact: its
        predictions equal this model's in that condition); its design holds only the labels
        and perturbations seen in the condition, so predicting a perturbation never seen there
        raises ``KeyError`` naming it (``P`` has no fitted row for it in this condition).
        """
        c = self._index(condition)
        delta = self.config.delta
        blocks = [(self.gene_scale + delta) * self.W]
        if self.condition_factors:
            blocks.append((self.gene_scale_own[c] + delta) * self.W_own[c])
        scaled = np.vstack(blocks)
        total = scaled.sum(axis=0)
        design = build_design(
            self.condition_labels[condition],
            encoding=self.design.encoding,
            parser=self.design.parser,
        )
        rows = [self.design.columns.index(col) for col in design.columns]
        L0, Lc = self.W.shape[0], self.condition_factors
        B = np.zeros((L0 + Lc, L0 + Lc))
        B[:L0, :L0], B[L0:, L0:] = self.B, self.B_own[c]
        keep = set(design.columns)
        return FittedModel(
            P=self.P[c][rows],
            W=scaled / total,
            B=B,
            kappa=self.kappa,
            gene_scale=total - delta,
            genes=list(self.genes),
            design=design,
            config=replace(self.config, n_factors=L0 + Lc),
            training={**self.training, "condition": condition},
            versions=dict(self.versions),
            on_target=None if self.on_target is None else self.on_target[c][rows],
            on_target_genes={k: v for k, v in self.on_target_genes.items() if k in keep},
            factor_labels=self.factor_names(condition),
        )

    @property
    def labels(self) -> list[str]:
        """Every label seen in some condition."""
        return list(self.design.labels)

    def predict(
        self, labels: Iterable[object], *, condition: str | Iterable[str] | None = None
    ) -> pd.DataFrame:
        """Expected expression of labels in each condition ((condition, label) x genes).

        Parameters
        ----------
        labels
            Labels made of perturbations seen in the condition (unseen combinations too).
        condition
            One condition, several, or ``None``: every condition where a label can be
            predicted; a label with a perturbation never seen in some condition is left out
            there (a warning names them), and only a label predictable nowhere is an error.

        Raises
        ------
        KeyError
            On an unknown condition, a label with a perturbation never seen in a condition
            asked for by name (naming both, and where it was seen), or (``condition=None``) a
            label predictable in no condition.

        Warns
        -----
        UserWarning
            With ``condition=None``, naming the (condition, label) pairs left out.
        """
        asked = [str(x) for x in labels]
        explicit = condition is not None
        names = self.conditions if condition is None else (
            [condition] if isinstance(condition, str) else [str(c) for c in condition]
        )  # fmt: skip
        frames, skipped = [], []
        for c in names:
            view = self.condition(c)
            keep = asked
            if not explicit:
                keep = [lab for lab in asked if _predictable(view, lab)]
                skipped += [(c, lab) for lab in asked if lab not in keep]
            if not keep:
                continue
            try:
                frame = view.predict(keep)
            except KeyError as err:
                raise KeyError(self._unseen_message(c, keep, str(err.args[0]))) from None
            frame.index = pd.MultiIndex.from_product([[c], keep], names=["condition", "label"])
            frames.append(frame)
        nowhere = [lab for lab in asked if all((c, lab) in skipped for c in names)]
        if nowhere:
            raise KeyError(self._unseen_message(names[0], nowhere, "not predictable"))
        if skipped:
            shown = ", ".join(f"{lab} in {c}" for c, lab in skipped[:10])
            more = "" if len(skipped) <= 10 else f" and {len(skipped) - 10} more"
            warnings.warn(
                f"not predicted where a perturbation was never seen: {shown}{more} (the model "
                "has no loadings for it there)",
                UserWarning,
                stacklevel=2,
            )
        return pd.concat(frames)

    def _unseen_message(self, condition: str, labels: list[str], default: str) -> str:
        """Name the perturbations of ``labels`` never seen in ``condition`` and where they were."""
        seen = set(self.condition(condition).design.columns)
        parser = self.design.parser
        missing = sorted({t for lab in labels for t in parser.tokens(lab) if t not in seen})
        if not missing:
            return f"in condition {condition!r}: {default}"
        elsewhere = {
            t: [c for c in self.conditions if t in self.condition(c).design.columns]
            for t in missing
        }
        where = "; ".join(
            f"{t}: {', '.join(v) if v else 'no condition'}" for t, v in elsewhere.items()
        )
        return (
            f"perturbation(s) {missing} were never seen in condition {condition!r} (seen in {where}): "
            f"the model has no loadings for them there, so it does not predict them in {condition!r}"
        )

    # --------------------------------------------------------------------- io
    def _tensors(self) -> dict[str, np.ndarray]:
        out = {n: getattr(self, n) for n in ("W", "B", "kappa", "gene_scale")}
        out |= {f"condition_{n}": getattr(self, n if n == "P" else f"{n}_own") for n in _BLOCKS}
        if self.on_target is not None:
            out["condition_on_target"] = self.on_target
        return {k: np.ascontiguousarray(v) for k, v in out.items()}

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the model folder (see the module docstring); as :meth:`FittedModel.save`."""
        from safetensors.numpy import save_file

        path = Path(path)
        if path.exists() and not overwrite and (path / METADATA).exists():
            msg = f"{path} already holds a model; pass overwrite=True to replace it"
            raise FileExistsError(msg)
        check_output_folder(path, overwrite=True, allowed=self.FILES, what="a model folder")
        meta = {
            "format_version": 1,
            "genes": list(self.genes),
            **self.design.to_dict(),
            "on_target_genes": dict(self.on_target_genes),
            "config": self.config.to_dict(),
            "training": self.training,
            "versions": self.versions,
            "conditions": {
                "names": list(self.conditions),
                "labels": {c: list(v) for c, v in self.condition_labels.items()},
                "condition_factors": self.condition_factors,
                "key": self.condition_key,
            },
        }
        with atomic_path(path, directory=True) as tmp:
            save_file(self._tensors(), str(tmp / TENSORS), metadata={"format": "pertspectra"})
            (tmp / METADATA).write_text(json.dumps(meta, indent=1, default=_json_default))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> ConditionModel:
        """Load a folder written by :meth:`save`, checked as :meth:`FittedModel.load` checks."""

        def shapes(meta_file: Path, meta: dict[str, Any], config: ModelConfig) -> dict:
            return condition_shapes(meta, config, check_conditions(meta_file, meta))

        with read_model_folder(path, shapes) as (meta, config, t):
            cond = meta["conditions"]
            return cls(
                conditions=list(cond["names"]),
                **{n: t[n] for n in ("W", "B", "kappa", "gene_scale")},
                P=t["condition_P"],
                **{f"{n}_own": t[f"condition_{n}"] for n in _BLOCKS[1:]},
                genes=list(meta["genes"]),
                design=Design.from_dict(meta),
                config=config,
                condition_labels={c: list(v) for c, v in cond["labels"].items()},
                condition_key=str(cond["key"]),
                training=dict(meta["training"]),
                versions=dict(meta["versions"]),
                on_target=t.get("condition_on_target"),
                on_target_genes=dict(meta["on_target_genes"]),
            )

    def summary(self) -> str:
        """A few lines describing the model (used by ``pertspectra info``)."""
        first = self.condition(self.conditions[0]).summary().splitlines()
        lines = [
            f"PertSpectra model under {len(self.conditions)} conditions (obs[{self.condition_key!r}]): "
            f"{len(self.genes)} genes, {self.W.shape[0]} shared programs + {self.condition_factors} "
            f"per condition, {len(self.design.columns)} design columns, {len(self.labels)} labels",
            *first[1:],
        ]
        for c in self.conditions:
            n = self.training.get("cells_per_condition", {}).get(c)
            lines.append(
                f"condition {c}: {len(self.condition_labels[c])} labels, "
                f"{self.W.shape[0] + self.condition_factors} factors "
                f"({self.W.shape[0]} shared, {self.condition_factors} own)"
                + (f", {n} cells" if n is not None else "")
            )
        return "\n".join(lines)


def _predictable(view: FittedModel, label: str) -> bool:
    """Whether ``view`` has a design row for ``label`` (its perturbations were seen there)."""
    try:
        view.design.columns_of(label)
    except KeyError:
        return False
    return True
