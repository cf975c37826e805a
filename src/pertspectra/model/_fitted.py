"""A fitted PertSpectra model: numpy parameters, design and metadata; safetensors + JSON on disk.

The folder holds ``model.safetensors`` with ``P`` (design columns x factors; positive under the
paper's parametrization, signed perturbation rows under ``"effects"``), ``W`` (factors x
genes, columns on the simplex), ``B`` (factors x factors), ``kappa`` (1 element) and
``gene_scale`` (genes), with the on-target term also ``on_target`` (design columns; the
log-factor on each perturbation's own target gene, zero where it has none), and ``model.json``
with ``genes``, ``design_columns``, ``labels``, ``on_target_genes`` (design column -> target
gene), ``config``, ``training`` and ``versions``. Nothing is pickled; loading checks both files
first (``_schema``: sizes, links, the JSON schema and format version, the tensor header).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .._utils import atomic_path, check_output_folder, package_versions
from ..design import Design
from ._config import ModelConfig
from ._mean import expected_expression

logger = logging.getLogger(__name__)

TENSORS = "model.safetensors"
METADATA = "model.json"
FORMAT_VERSION = 1
_NAMES = ("P", "W", "B", "kappa", "gene_scale")


def _versions() -> dict[str, str]:
    return package_versions("numpy", "torch")


@dataclass
class FittedModel:
    """Fitted PertSpectra parameters with everything needed to predict.

    Attributes
    ----------
    P, W, B, kappa, gene_scale
        Fitted values (see module docstring).
    genes
        Gene names (columns of ``W``).
    design
        The :class:`~pertspectra.design.Design` (columns and label rows).
    config
        Hyperparameters.
    training
        Epochs, final loss, loss history, seconds, device, ``converged`` and its evidence...
    on_target
        Per design column, the on-target log-factor (``None``: no on-target term).
    on_target_genes
        Design column -> the measured gene it targets (the columns ``on_target`` acts on).
    factor_labels
        Factor names (``None``: ``factor_0``, ...); a condition of a
        :class:`~pertspectra.model.ConditionModel` names its shared programs ``shared_k`` and
        its own ``<condition>_k``.
    """

    #: The names a model folder holds (``checkpoint``: an interrupted ``pertspectra fit``'s).
    FILES: ClassVar[tuple[str, ...]] = (TENSORS, METADATA, "checkpoint")

    P: np.ndarray
    W: np.ndarray
    B: np.ndarray
    kappa: np.ndarray
    gene_scale: np.ndarray
    genes: list[str]
    design: Design
    config: ModelConfig
    training: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=_versions)
    on_target: np.ndarray | None = None
    on_target_genes: dict[str, str] = field(default_factory=dict)
    factor_labels: list[str] | None = None

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Check names and shapes; raise ``ValueError`` naming the mismatch."""
        L = self.P.shape[1]
        g = len(self.genes)
        expected = {
            "P": (len(self.design.columns), L),
            "W": (L, g),
            "B": (L, L),
            "kappa": (1,),
            "gene_scale": (g,),
        }
        for name, shape in expected.items():
            got = tuple(np.shape(getattr(self, name)))
            if got != shape:
                msg = f"model tensor {name!r} has shape {got}, expected {shape}"
                raise ValueError(msg)
        if len(set(self.genes)) != g:
            msg = "model gene names are not unique"
            raise ValueError(msg)
        if self.config.n_factors != L:
            msg = f"model has {L} factors but its config says {self.config.n_factors}"
            raise ValueError(msg)
        unknown = {c for cols in self.design.labels.values() for c in cols} - set(
            self.design.columns
        )
        if unknown:
            msg = f"model labels refer to unknown design columns {sorted(unknown)}"
            raise ValueError(msg)
        for name in _NAMES:
            if not np.all(np.isfinite(getattr(self, name))):
                msg = f"model tensor {name!r} contains non-finite values"
                raise ValueError(msg)
        if self.on_target is not None:
            got = tuple(np.shape(self.on_target))
            if got != (len(self.design.columns),):
                msg = f"model tensor 'on_target' has shape {got}, expected ({len(self.design.columns)},)"
                raise ValueError(msg)
            if not np.all(np.isfinite(self.on_target)):
                msg = "model tensor 'on_target' contains non-finite values"
                raise ValueError(msg)
        bad_cols = set(self.on_target_genes) - set(self.design.columns)
        bad_genes = set(self.on_target_genes.values()) - set(self.genes)
        if bad_cols or bad_genes:
            msg = (
                f"model on_target_genes name unknown design columns {sorted(bad_cols)} "
                f"or genes {sorted(bad_genes)}"
            )
            raise ValueError(msg)

    def check_genes(self, genes: Iterable[object], *, source: str) -> None:
        """Refuse data that lacks genes of the model (data of other genes).

        Parameters
        ----------
        genes
            The data's gene names (``var_names``).
        source
            How the message names the data (e.g. ``"--data screen.h5ad"``).

        Raises
        ------
        ValueError
            Naming how many of the model's genes ``genes`` lacks, with examples. Genes of the
            data that the model lacks are only logged (they are not used).
        """
        have = [str(g) for g in genes]
        present = set(have)
        missing = [g for g in self.genes if g not in present]
        extra = sorted(present - set(self.genes))
        if missing:
            also = (
                f" and has {len(extra)} genes the model lacks (e.g. {extra[:5]})" if extra else ""
            )
            msg = (
                f"{source} has other genes than the model: it lacks {len(missing)} of the model's "
                f"{len(self.genes)} genes (e.g. {missing[:5]}){also}; use the data the model was "
                "fitted on (the same var_names)"
            )
            raise ValueError(msg)
        if extra:
            logger.warning(
                "%s has %d genes the model was not fitted on (e.g. %s); they are not used",
                source,
                len(extra),
                extra[:5],
            )

    @property
    def on_target_gene_index(self) -> np.ndarray:
        """Per design column, the index of its target gene in :attr:`genes` (``-1``: none)."""
        return on_target_gene_index(self.design.columns, self.on_target_genes, self.genes)

    # -------------------------------------------------------------- predicting
    @property
    def labels(self) -> list[str]:
        """Canonical labels seen in training."""
        return list(self.design.labels)

    def predict(self, labels: Iterable[object]) -> pd.DataFrame:
        """Expected expression of labels made of seen perturbations (labels x genes).

        Combinations never observed are predicted from their design row (``basal`` plus the
        perturbations' rows), as the paper does: ``(gene_scale + delta) * (h @ P) @ W`` for the
        design row ``h`` (with ``(h @ P) @ W`` clamped below at ``config.floor`` under the
        ``"effects"`` parametrization), times ``exp(t_k)`` on each perturbation's own target
        gene under the on-target term. Raises ``KeyError`` naming an unseen single
        perturbation, or any unseen label under the ``"label"`` encoding.
        """
        labels = [str(x) for x in labels]
        if not labels:
            msg = "no labels to predict"
            raise ValueError(msg)
        mu = expected_expression(
            self.design.matrix(labels),
            self.P,
            self.W,
            gene_scale=self.gene_scale,
            delta=self.config.delta,
            parametrization=self.config.parametrization,
            floor=self.config.floor,
            on_target=self.on_target,
            on_target_gene=None if self.on_target is None else self.on_target_gene_index,
        )
        return pd.DataFrame(
            mu, index=pd.Index(labels, name="label"), columns=pd.Index(self.genes, name="gene")
        )

    @property
    def factor_names(self) -> list[str]:
        """``factor_0``, ``factor_1``, ... (or :attr:`factor_labels`)."""
        if self.factor_labels is not None:
            return list(self.factor_labels)
        return [f"factor_{i}" for i in range(self.W.shape[0])]

    # --------------------------------------------------------------------- io
    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write ``model.safetensors`` and ``model.json`` into the folder ``path``.

        Written to a temporary folder beside ``path`` and renamed, so an existing model is
        replaced only by a complete one (and only with ``overwrite=True``).
        """
        from safetensors.numpy import save_file

        path = Path(path)
        if path.exists() and not overwrite:
            if not (path / METADATA).exists() and any(path.iterdir()):
                msg = f"{path} exists and is not an empty folder or a pertspectra model; choose another --out"
                raise FileExistsError(msg)
            if (path / METADATA).exists():
                msg = f"{path} already holds a model; pass overwrite=True to replace it"
                raise FileExistsError(msg)
        check_output_folder(path, overwrite=True, allowed=self.FILES, what="a model folder")
        tensors = {name: np.ascontiguousarray(getattr(self, name)) for name in _NAMES}
        if self.on_target is not None:
            tensors["on_target"] = np.ascontiguousarray(self.on_target)
        meta = {
            "format_version": FORMAT_VERSION,
            "genes": list(self.genes),
            **self.design.to_dict(),
            "on_target_genes": dict(self.on_target_genes),
            "config": self.config.to_dict(),
            "training": self.training,
            "versions": self.versions,
        }
        with atomic_path(path, directory=True) as tmp:
            save_file(tensors, str(tmp / TENSORS), metadata={"format": "pertspectra"})
            (tmp / METADATA).write_text(json.dumps(meta, indent=1, default=_json_default))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> FittedModel:
        """Load a model folder written by :meth:`save`, checking everything before using it.

        Nothing is executed or unpickled: ``model.json`` is checked against its schema (every
        key and type, the format version, settings accepted by :class:`ModelConfig`, unknown
        keys refused), ``model.safetensors``'s header against the shapes ``model.json``
        implies (float tensors, no unknown ones) before the tensors are read, both files'
        sizes are bounded before reading, and a file that is a link leading out of the folder
        is refused.

        Raises
        ------
        FileNotFoundError
            ``path`` lacks ``model.json`` or ``model.safetensors``.
        ValueError
            A truncated, corrupt or edited file, or an unsupported format version; the
            one-line message names the file.
        """
        from . import _schema

        def shapes(meta_file: Path, meta: dict[str, Any], config: ModelConfig) -> dict:
            if "conditions" in meta:
                msg = f"{path} holds a model fitted under several conditions: load it with ConditionModel.load"
                raise ValueError(msg)
            return _schema.expected_shapes(meta, config)

        with read_model_folder(path, shapes) as (meta, config, tensors):
            return cls(
                P=tensors["P"],
                W=tensors["W"],
                B=tensors["B"],
                kappa=tensors["kappa"],
                gene_scale=tensors["gene_scale"],
                genes=list(meta["genes"]),
                design=Design.from_dict(meta),
                config=config,
                training=dict(meta["training"]),
                versions=dict(meta["versions"]),
                on_target=tensors.get("on_target"),
                on_target_genes=dict(meta["on_target_genes"]),
            )

    def summary(self) -> str:
        """A few lines describing the model (used by ``pertspectra info``)."""
        t = self.training
        lines = [
            f"PertSpectra model: {len(self.genes)} genes, {self.config.n_factors} factors, "
            f"{len(self.design.columns)} design columns ({self.design.encoding} encoding), "
            f"{len(self.design.labels)} labels",
            f"kappa {float(self.kappa[0]):.4g}, rho {self.config.rho}, lambda {self.config.lam}, "
            f"graph term {'on' if self.config.graph else 'off'}, {self.config.parametrization} parametrization"
            + (
                f" with {len(self.on_target_genes)} on-target terms"
                if self.on_target is not None
                else ""
            ),
        ]
        if t:
            lines.append(
                f"trained {t.get('epochs', '?')} epochs on {t.get('device', '?')} ({t.get('dtype', '?')}) in "
                f"{t.get('seconds', float('nan')):.1f} s; final loss {t.get('final_loss', float('nan')):.6g}; "
                f"{t.get('schedule', 'stepped')} schedule"
                + {
                    "means": " from the labels' means",
                    "communities": " from the prior's communities",
                }.get(str(t.get("start")), "")
                + f": {t.get('stop_reason', '?')}"
            )
        if t.get("deviance_explained") is not None:
            lines.append(
                f"deviance explained {100 * t['deviance_explained']:.2f}% (0%: every label at "
                "the pooled mean; 100%: at its own training mean)"
            )
        ends = t.get("init_final_losses") or []
        if len(ends) > 1:
            lines.append(f"best of {len(ends)} starts, ended {min(ends):.6g} to {max(ends):.6g}")
        if self.training.get("prior"):
            lines.append(f"prior: {self.training['prior']}")
        return "\n".join(lines)


def _json_default(o: object) -> object:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    msg = f"cannot serialise {type(o).__name__} to JSON"
    raise TypeError(msg)


def on_target_gene_index(
    columns: Sequence[str], on_target_genes: dict[str, str], genes: Sequence[str]
) -> np.ndarray:
    """Per design column, the index in ``genes`` of the gene it targets (``-1``: none)."""
    gi = {g: i for i, g in enumerate(genes)}
    return np.array(
        [gi[on_target_genes[c]] if c in on_target_genes else -1 for c in columns], dtype=np.int64
    )


def versions() -> dict[str, str]:
    """Versions of pertspectra, numpy, Python and torch (what every output records)."""
    return _versions()


def load_model(path: str | os.PathLike) -> FittedModel:
    """Load a model folder (see :meth:`FittedModel.load`).

    A model fitted under several conditions is a :class:`~pertspectra.model.ConditionModel`:
    load it with its ``load`` (:func:`~pertspectra.model.is_condition_model` tells them apart).
    """
    return FittedModel.load(path)


@contextlib.contextmanager
def read_model_folder(
    path: str | os.PathLike,
    shapes: Callable[[Path, dict[str, Any], ModelConfig], dict[str, tuple[int, ...]]],
) -> Iterator[tuple[dict[str, Any], ModelConfig, dict[str, np.ndarray]]]:
    """Check and read a model folder: yields ``(model.json, config, tensors)``.

    ``shapes(meta_file, meta, config)`` gives the tensors the folder must hold (it may refuse
    the folder with a ``ValueError``). A ``ValueError``, ``TypeError`` or ``KeyError`` raised
    while building the model from them (inside the ``with``) becomes one ``ValueError`` line
    saying the two files do not match.
    """
    from . import _schema

    path = Path(path)
    if not path.is_dir():
        msg = f"model folder {path} not found (a model folder holds {METADATA} and {TENSORS})"
        raise FileNotFoundError(msg)
    meta_file = _schema.model_file(path, METADATA)
    tensor_file = _schema.model_file(path, TENSORS)
    meta = _schema.parse_metadata(
        meta_file,
        _schema.read_bytes(
            meta_file, limit=_schema.MAX_METADATA_BYTES, why="bytes a model.json may have"
        ),
    )
    config = _schema.model_config(meta_file, meta["config"])
    expected = shapes(meta_file, meta, config)
    data = _schema.read_bytes(
        tensor_file,
        limit=_schema.tensor_limit(expected),
        why=f"bytes the shapes in {METADATA} allow",
    )
    tensors = _schema.read_tensors(tensor_file, data, expected)
    try:
        yield meta, config, tensors
    except (ValueError, TypeError, KeyError) as err:
        msg = (
            f"{tensor_file} does not match {meta_file} ({' '.join(str(err).split())}); "
            "the model folder is corrupt or was edited; fit or save the model again"
        )
        raise ValueError(msg) from None
