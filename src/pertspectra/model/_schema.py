"""Safe reading of a model folder: paths, sizes, the ``model.json`` schema and the tensors.

A model folder is data only: ``model.json`` (checked key by key against the schema below) and
``model.safetensors`` (its header parsed and checked here, against the shapes ``model.json``
implies, before safetensors reads the tensors). Nothing is executed or unpickled, no path
leaves the folder, and every file's size is bounded before it is read. Every problem is one
``ValueError`` (``FileNotFoundError`` for a missing file) whose one-line message names the
file and says what to do.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import struct
from collections.abc import Iterable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from ._config import ModelConfig

#: The model-format versions this pertspectra reads (the writer writes the last one).
SUPPORTED_VERSIONS: tuple[int, ...] = (1,)
#: ``model.json`` larger than this is refused before it is read.
MAX_METADATA_BYTES = 64 * 2**20
#: A safetensors header longer than this is refused (a model's header is a few hundred bytes).
MAX_HEADER_BYTES = 1 * 2**20
#: safetensors dtypes a model tensor may have, with their sizes in bytes.
FLOAT_DTYPES: dict[str, int] = {"F16": 2, "F32": 4, "F64": 8}
#: Tensors every model holds; ``on_target`` is there exactly when ``config["on_target"]``.
REQUIRED_TENSORS = ("P", "W", "B", "kappa", "gene_scale")
OPTIONAL_TENSORS = ("on_target",)
#: Keys of ``model.json`` (all written by :meth:`FittedModel.save`; all required).
METADATA_KEYS = (
    "format_version",
    "genes",
    "design_columns",
    "labels",
    "encoding",
    "separator",
    "controls",
    "on_target_genes",
    "config",
    "training",
    "versions",
)
_CORRUPT = "the model folder is corrupt or was edited; fit or save the model again"


def _short(value: object) -> str:
    """A one-line, bounded ``repr`` of ``value`` for a message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type(value: object) -> str:
    """The JSON name of ``value``'s type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _fail(file: Path, what: str) -> ValueError:
    return ValueError(" ".join(f"{file}: {what}; {_CORRUPT}".split()))


def _check_keys(
    file: Path,
    got: Mapping[str, Any],
    allowed: Iterable[str],
    *,
    unknown: str,
    missing: str,
    required: Iterable[str] | None = None,
) -> None:
    """Refuse keys of ``got`` outside ``allowed`` and ``required`` keys (default: all) it lacks."""
    allowed = list(allowed)
    extra = sorted(set(got) - set(allowed))
    if extra:
        raise _fail(file, f"{unknown} {[k[:40] for k in extra[:5]]}")
    absent = [k for k in (allowed if required is None else required) if k not in got]
    if absent:
        raise _fail(file, f"{missing} {absent}")


def model_file(folder: Path, name: str) -> Path:
    """``folder / name`` if it is a regular file inside ``folder``.

    Raises ``FileNotFoundError`` when it is missing (or a broken link) and ``ValueError`` when
    it is a link leading outside the folder or not a regular file.
    """
    path = folder / name
    if not path.exists():
        msg = (
            f"{folder} is not a pertspectra model folder: {path} is missing "
            "(a model folder holds model.json and model.safetensors)"
        )
        raise FileNotFoundError(msg)
    real = path.resolve()
    if path.is_symlink() and not real.is_relative_to(folder.resolve()):
        msg = (
            f"{path} is a link to {real}, outside the model folder; a model folder must hold "
            "its files (copy the file into the folder)"
        )
        raise ValueError(msg)
    if not real.is_file():
        msg = f"{path} is not a regular file; a model folder holds model.json and model.safetensors"
        raise ValueError(msg)
    return path


def read_bytes(path: Path, *, limit: int, why: str) -> bytes:
    """The bytes of ``path``, refusing (before reading) a file larger than ``limit``."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > limit:
            msg = f"{path} is {size:,} bytes, more than the {limit:,} {why}; it is not a pertspectra model file"
            raise ValueError(msg)
        data = fh.read(size + 1)  # allocates what the file holds, not the limit
    if len(data) > size:  # grew while being read
        msg = f"{path} changed while being read; try again"
        raise ValueError(msg)
    return data


# ------------------------------------------------------------------------------ model.json
def _str_list(file: Path, key: str, value: object, *, unique: bool, nonempty: bool) -> list[str]:
    key = key if "[" in key else repr(key)
    if not isinstance(value, list):
        raise _fail(file, f"{key} must be a list of strings, got {_type(value)}")
    bad = [v for v in value if not isinstance(v, str) or (nonempty and not v.strip())]
    if bad:
        raise _fail(
            file,
            f"{key} holds {len(bad)} entries that are not non-empty strings, e.g. {_short(bad[0])}",
        )
    if unique and len(set(value)) != len(value):
        counts: dict[str, int] = {}
        for v in value:
            counts[v] = counts.get(v, 0) + 1
        dup = next(v for v, n in counts.items() if n > 1)
        raise _fail(file, f"{key} names {_short(dup)} more than once")
    return [str(v) for v in value]


def _str_dict(file: Path, key: str, value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(file, f"{key!r} must be an object, got {_type(value)}")
    return value


def _is_number(value: object, *, none: bool = False) -> bool:
    return (value is None and none) or (
        isinstance(value, int | float) and not isinstance(value, bool)
    )


#: ModelConfig field -> (check, description of what is expected)
_CONFIG_TYPES: dict[str, tuple[Any, str]] = {
    "n_factors": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
        "an integer >= 1",
    ),
    "lam": (_is_number, "a number"),
    "rho": (_is_number, "a number"),
    "delta": (_is_number, "a number"),
    "kappa": (lambda v: _is_number(v, none=True), "a number or null"),
    "graph": (lambda v: isinstance(v, bool), "true or false"),
    "weight_decay": (lambda v: _is_number(v, none=True), "a number or null"),
    "parametrization": (lambda v: isinstance(v, str), "a string"),
    "floor": (_is_number, "a number"),
    "on_target": (lambda v: v is None or isinstance(v, bool), "true, false or null"),
}
#: training keys read by pertspectra (summary, report) -> (check, description)
_TRAINING_TYPES: dict[str, tuple[Any, str]] = {
    "epochs": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "seconds": (_is_number, "a number"),
    "final_loss": (_is_number, "a number"),
    "converged": (lambda v: isinstance(v, bool), "true or false"),
    **{
        k: (lambda v: isinstance(v, str), "a string")
        for k in ("device", "dtype", "schedule", "stop_reason", "prior")
    },
}


def check_version(file: Path, meta: Mapping[str, Any]) -> int:
    """The format version of ``meta``; ``ValueError`` when missing or not supported."""
    from .._utils import VERSION

    version = meta.get("format_version")
    if (
        not isinstance(version, int)
        or isinstance(version, bool)
        or version not in SUPPORTED_VERSIONS
    ):
        shown = "(missing)" if "format_version" not in meta else _short(version)
        supported = ", ".join(map(str, SUPPORTED_VERSIONS))
        hint = (
            "upgrade pertspectra"
            if isinstance(version, int)
            and not isinstance(version, bool)
            and version > max(SUPPORTED_VERSIONS)
            else "the folder was not written by pertspectra or was edited; fit or save the model again"
        )
        msg = f"{file}: model format version {shown} is not supported by pertspectra {VERSION} (supports {supported}); {hint}"
        raise ValueError(msg)
    return version


def parse_metadata(file: Path, data: bytes) -> dict[str, Any]:
    """Decode and schema-check the bytes of ``model.json``; return the JSON object."""
    try:
        meta = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise _fail(file, f"not valid JSON ({type(err).__name__}: {_short(str(err))})") from None
    if not isinstance(meta, dict):
        raise _fail(file, f"must hold a JSON object, got {_type(meta)}")
    check_version(file, meta)
    _check_keys(
        file, meta, (*METADATA_KEYS, "conditions"), required=METADATA_KEYS,
        unknown="unknown key(s)", missing="lacks key(s)",
    )  # fmt: skip
    genes = _str_list(file, "genes", meta["genes"], unique=True, nonempty=True)
    columns = _str_list(file, "design_columns", meta["design_columns"], unique=True, nonempty=True)
    if not genes or not columns:
        raise _fail(file, f"{'genes' if not genes else 'design_columns'!r} is empty")
    labels = _str_dict(file, "labels", meta["labels"])
    if not labels:
        raise _fail(file, "'labels' is empty")
    known = set(columns)
    for label, cols in labels.items():
        if not label.strip():
            raise _fail(file, "'labels' has an empty label")
        _str_list(file, f"labels[{_short(label)}]", cols, unique=True, nonempty=True)
        if not cols or not set(cols) <= known:
            raise _fail(file, f"labels[{_short(label)}] = {_short(cols)} must name design columns")
    if meta["encoding"] not in ("gene", "label"):
        raise _fail(file, f"'encoding' must be 'gene' or 'label', got {_short(meta['encoding'])}")
    if not isinstance(meta["separator"], str) or not meta["separator"]:
        raise _fail(
            file, f"'separator' must be a non-empty string, got {_short(meta['separator'])}"
        )
    _str_list(file, "controls", meta["controls"], unique=False, nonempty=True)
    targets = _str_dict(file, "on_target_genes", meta["on_target_genes"])
    gene_set = set(genes)
    for col, gene in targets.items():
        if col not in known or not isinstance(gene, str) or gene not in gene_set:
            raise _fail(
                file,
                f"on_target_genes[{_short(col)}] = {_short(gene)} must map a design column to a gene",
            )
    config = _str_dict(file, "config", meta["config"])
    _check_keys(
        file, config, {f.name for f in fields(ModelConfig)},
        required=[k for k in _CONFIG_TYPES if k != "on_target"],
        unknown="config has unknown setting(s)", missing="config lacks setting(s)",
    )  # fmt: skip
    for key, value in config.items():
        ok, expected = _CONFIG_TYPES[key]
        if not ok(value):
            raise _fail(file, f"config[{key!r}] must be {expected}, got {_short(value)}")
    training = _str_dict(file, "training", meta["training"])
    for key, (ok, expected) in _TRAINING_TYPES.items():
        if key in training and not ok(training[key]):
            raise _fail(file, f"training[{key!r}] must be {expected}, got {_short(training[key])}")
    versions = _str_dict(file, "versions", meta["versions"])
    bad = [k for k, v in versions.items() if not isinstance(v, str)]
    if bad:
        raise _fail(file, f"versions[{_short(bad[0])}] must be a string")
    return meta


def model_config(file: Path, config: dict[str, Any]) -> ModelConfig:
    """``ModelConfig`` of a checked ``config`` object (its value errors name ``file``)."""
    try:
        return ModelConfig.from_dict(config)
    except (ValueError, TypeError) as err:
        raise _fail(file, f"config: {err}") from None


# ----------------------------------------------------------------------- model.safetensors
def expected_shapes(meta: Mapping[str, Any], config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor the model described by ``meta`` holds."""
    n_cols, n_genes = len(meta["design_columns"]), len(meta["genes"])
    L = int(config.n_factors or 0)
    shapes = {
        "P": (n_cols, L),
        "W": (L, n_genes),
        "B": (L, L),
        "kappa": (1,),
        "gene_scale": (n_genes,),
    }
    if config.on_target:
        shapes["on_target"] = (n_cols,)
    return shapes


def tensor_limit(shapes: Mapping[str, tuple[int, ...]]) -> int:
    """The largest size in bytes a safetensors file holding ``shapes`` may have."""
    n = sum(math.prod(s) for s in shapes.values())
    return 8 + MAX_HEADER_BYTES + 8 * n


def check_header(file: Path, data: bytes, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Check the safetensors header of ``data`` against ``shapes`` (before safetensors reads it)."""
    size = len(data)
    if size < 8:
        raise _fail(file, f"holds {size} bytes, too few for a safetensors file (truncated)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > min(MAX_HEADER_BYTES, size - 8):
        raise _fail(
            file,
            f"declares a header of {n:,} bytes but holds {size:,} bytes in all (truncated or corrupt)",
        )
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _fail(file, "its header is not valid JSON (truncated or corrupt)") from None
    if not isinstance(header, dict):
        raise _fail(file, f"its header must be a JSON object, got {_type(header)}")
    extra = header.pop("__metadata__", {})
    if not isinstance(extra, dict) or not all(isinstance(v, str) for v in extra.values()):
        raise _fail(file, "its '__metadata__' must map strings to strings")
    _check_keys(file, header, shapes, unknown="holds unknown tensor(s)", missing="lacks tensors")
    end = 0
    spans = []
    for name, shape in shapes.items():
        entry = header[name]
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise _fail(file, f"tensor {name!r} has a malformed header entry {_short(entry)}")
        dtype, got, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in FLOAT_DTYPES:
            raise _fail(
                file,
                f"tensor {name!r} has dtype {_short(dtype)}, expected one of {sorted(FLOAT_DTYPES)}",
            )
        if (
            not isinstance(got, list)
            or [type(x) for x in got] != [int] * len(got)
            or tuple(got) != shape
        ):
            raise _fail(
                file,
                f"tensor {name!r} has shape {_short(got)}, expected {list(shape)} (from model.json)",
            )
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(type(x) is int for x in offsets)
            or offsets[1] - offsets[0] != math.prod(shape) * FLOAT_DTYPES[dtype]
            or offsets[0] < 0
        ):
            raise _fail(file, f"tensor {name!r} has bad data offsets {_short(offsets)}")
        spans.append((offsets[0], offsets[1]))
        end = max(end, offsets[1])
    spans.sort()
    if any(a[1] > b[0] for a, b in itertools.pairwise(spans)):
        raise _fail(file, "its tensors overlap")
    if 8 + n + end != size:
        raise _fail(
            file,
            f"holds {size:,} bytes but its header describes {8 + n + end:,} (truncated or corrupt)",
        )


def read_tensors(
    file: Path, data: bytes, shapes: Mapping[str, tuple[int, ...]]
) -> dict[str, np.ndarray]:
    """The tensors of the checked safetensors ``data``, as finite float64 arrays."""
    from safetensors.numpy import load

    check_header(file, data, shapes)
    try:
        tensors = load(data)
    except Exception as err:  # safetensors raises its own error types for bad bytes
        raise _fail(file, f"cannot be read ({type(err).__name__}: {_short(str(err))})") from None
    out = {}
    for name in shapes:
        arr = np.asarray(tensors[name], dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise _fail(file, f"tensor {name!r} holds non-finite values")
        out[name] = arr
    return out
