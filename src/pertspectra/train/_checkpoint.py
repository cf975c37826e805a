"""Checkpoints of a running fit: safetensors + JSON, written atomically, resumed bit for bit.

A checkpoint folder (``fit(..., checkpoint=DIR)``; the CLI's ``--out DIR`` keeps it in
``DIR/checkpoint/``) holds

``checkpoint.json``
    What is being fitted: the format version, the settings (model and training configs, encoding,
    seed, device, dtype), a SHA-256 of the data the fit sees (group statistics and prior), the
    torch thread count and the package versions. ``fit(..., resume=True)`` refuses a checkpoint
    whose settings or data differ and names them.
``init{i}.safetensors``
    The state of initialisation ``i``: the parameters, AdamW's moments and step counts, the
    best-so-far parameters and the per-epoch history as tensors; the schedule position (phase,
    check cycles, the stepped schedule's rule counters), the rest of the history and the elapsed
    seconds as JSON in the safetensors header (``__metadata__["state"]``). A finished
    initialisation keeps its final state, so a resumed fit skips it.

When they are written: every ``every`` seconds at the end of an epoch, at the end of the
stepped schedule (its check then runs on a copy and restarts from there), when a run finishes and
when it is interrupted. While a checkpointed run is in the main thread, SIGINT (and SIGTERM when a
Python handler is installed, as the CLI does) only sets a flag; the run stops at the end of the
current epoch, writes the checkpoint and raises :class:`KeyboardInterrupt` (a second signal stops
at once, keeping the previous checkpoint). A run started on a checkpoint continues from it and
ends with the same parameters and history, bit for bit, as an uninterrupted run (same device,
dtype and thread count on the CPU).

Every file is written to a temporary file beside it and renamed, so a kill at any moment leaves
the previous checkpoint readable. Nothing is pickled. The fit itself draws no random numbers
after the initialisation (full-batch gradients), so no RNG state is stored: the initialisation is
recomputed from the seed and then replaced by the stored parameters.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._utils import atomic_path

if TYPE_CHECKING:
    import torch

#: Version of the checkpoint layout; a resume refuses any other.
CHECKPOINT_VERSION = 1
#: The file describing what a checkpoint folder fits.
INFO = "checkpoint.json"


def data_checksum(*arrays: Any, names: list[str] | None = None) -> str:
    """SHA-256 over arrays (dtype, shape and bytes, in order) and optional names."""
    digest = hashlib.sha256()
    for a in arrays:
        arr = np.ascontiguousarray(np.asarray(a))
        digest.update(f"{arr.dtype.str}{arr.shape}".encode())
        digest.update(arr.tobytes())
    if names is not None:
        digest.update(json.dumps(names).encode())
    return digest.hexdigest()


def stats_checksum(stats: Any, design_matrix: np.ndarray, prior: Any) -> str:
    """SHA-256 of what a fit sees: design, group statistics, weights, prior, labels and genes."""
    import scipy.sparse as sp

    from .._keys import LAYER_WEIGHTED_SUM, WEIGHT

    csr = None if prior is None else sp.csr_matrix(prior)
    return data_checksum(
        design_matrix,
        np.asarray(stats.layers[LAYER_WEIGHTED_SUM]),
        stats.obs[WEIGHT].to_numpy(),
        *(() if csr is None else (csr.indptr, csr.indices, csr.data)),
        names=[*map(str, stats.obs_names), "|", *map(str, stats.var_names)],
    )


def open_checkpoint(
    path: str | os.PathLike | None,
    *,
    resume: bool,
    every: float,
    settings: dict[str, Any],
    data: str,
    threads: int,
) -> Checkpoint | None:
    """The :class:`Checkpoint` of a fit (``None`` without ``path``); see :class:`Checkpoint`."""
    if path is None:
        if resume:
            msg = "resume=True needs checkpoint= (the folder of the interrupted fit)"
            raise ValueError(msg)
        return None
    fingerprint = {"settings": settings, "data": data, "threads": threads}
    return Checkpoint(path, fingerprint=fingerprint, resume=resume, every=every)


@dataclass
class Slot:
    """One initialisation's state file in a checkpoint folder (what :func:`._loop.run` uses).

    Attributes
    ----------
    path
        The ``init{i}.safetensors`` file.
    every
        Seconds between periodic writes (0: every epoch); a write also happens when the fit is
        interrupted, at the end of the stepped schedule and when the initialisation finishes.
    """

    path: Path
    every: float = 60.0

    def read(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        """The stored tensors and state, or ``None`` when nothing was written yet."""
        from safetensors import safe_open
        from safetensors.torch import load_file

        if not self.path.is_file():
            return None
        try:
            with safe_open(str(self.path), framework="pt") as fh:
                meta = fh.metadata() or {}
            tensors = load_file(str(self.path))
            state = json.loads(meta["state"])
            if not isinstance(state, dict):
                raise TypeError("state is not a JSON object")
        except Exception as err:  # safetensors and json raise their own types for bad bytes
            msg = (
                f"checkpoint file {self.path} cannot be read ({type(err).__name__}: {err}); "
                f"delete {self.path.parent} and fit afresh"
            )
            raise ValueError(msg) from None
        return tensors, state

    def write(self, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
        """Write the state to a temporary file and rename it onto :attr:`path`."""
        from safetensors.torch import save_file

        plain = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
        with atomic_path(self.path) as tmp:
            save_file(plain, str(tmp), metadata={"state": json.dumps(state)})


class Checkpoint:
    """A checkpoint folder: validated on resume, one :class:`Slot` per initialisation.

    Parameters
    ----------
    path
        The folder.
    fingerprint
        What the fit is (``settings`` and ``data`` entries; see the module docstring).
    resume
        Continue the checkpoint in ``path`` (it must exist and match ``fingerprint``); otherwise
        ``path`` must not hold a checkpoint yet.
    every
        Seconds between periodic writes (0: every epoch).
    """

    def __init__(
        self, path: str | os.PathLike, *, fingerprint: dict[str, Any], resume: bool, every: float
    ) -> None:
        if not float(every) >= 0:
            msg = f"checkpoint_every must be >= 0 seconds, got {every}"
            raise ValueError(msg)
        self.path, self.every = Path(path), float(every)
        info = self.path / INFO
        if resume:
            if not info.is_file():
                msg = (
                    f"no checkpoint to resume in {self.path} (it has no {INFO}); the fit was "
                    "interrupted before its first checkpoint or finished: fit without resume"
                )
                raise FileNotFoundError(msg)
            self._check(info, fingerprint)
            return
        if info.exists() or any(self.path.glob("init*.safetensors")):
            msg = (
                f"{self.path} holds the checkpoint of an earlier fit: continue it with "
                f"resume=True (CLI: --resume), or delete {self.path} to start afresh"
            )
            raise FileExistsError(msg)
        from ..model._fitted import versions

        doc = {"format_version": CHECKPOINT_VERSION, **fingerprint, "versions": versions()}
        self.path.mkdir(parents=True, exist_ok=True)
        with atomic_path(info) as tmp:
            tmp.write_text(json.dumps(doc, indent=1, sort_keys=True))

    def _check(self, info: Path, fingerprint: dict[str, Any]) -> None:
        try:
            stored = json.loads(info.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            msg = f"{info} cannot be read ({err}); delete {self.path} and fit afresh"
            raise ValueError(msg) from None
        if not isinstance(stored, dict) or stored.get("format_version") != CHECKPOINT_VERSION:
            version = stored.get("format_version") if isinstance(stored, dict) else None
            msg = (
                f"{info} has checkpoint format version {version!r}; this pertspectra reads "
                f"version {CHECKPOINT_VERSION}: finish the fit with the pertspectra that started "
                f"it, or delete {self.path} and fit afresh"
            )
            raise ValueError(msg)
        settings, was = fingerprint.get("settings", {}), stored.get("settings", {})
        differ = sorted(
            k for k in set(settings) | set(was) if _plain(settings.get(k)) != _plain(was.get(k))
        )
        problems = [f"{k} (checkpoint {was.get(k)!r}, now {settings.get(k)!r})" for k in differ]
        if fingerprint.get("data") != stored.get("data"):
            problems.insert(0, "the data (checksum of the group statistics and prior)")
        if problems:
            msg = (
                f"the checkpoint in {self.path} was made with other inputs: "
                + "; ".join(problems)
                + ". Resume with the same data and options, or fit afresh without resume"
            )
            raise ValueError(msg)
        if stored.get("threads") != fingerprint.get("threads"):
            warnings.warn(
                f"resuming with {fingerprint.get('threads')} torch threads, the checkpoint used "
                f"{stored.get('threads')}: the result will not be bit-identical to an "
                "uninterrupted run (pass threads= / --threads as before)",
                UserWarning,
                stacklevel=3,
            )

    def slot(self, index: int) -> Slot:
        """The state file of initialisation ``index``."""
        return Slot(self.path / f"init{index}.safetensors", every=self.every)

    def remove(self) -> None:
        """Delete the checkpoint folder."""
        shutil.rmtree(self.path, ignore_errors=True)


def _plain(value: Any) -> Any:
    """JSON round trip, so tuples and lists (and int and float keys) compare as stored."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


# ---------------------------------------------------------------- a run's state <-> a Slot
# ``stepper`` is :class:`pertspectra.train._loop._Stepper`: params, opt, hist, phase,
# best_value, best_state, extra, checkpoint, pending, seconds(), restore().

_HISTORY = ("loss", "recon", "graph", "lr")


def pack(stepper: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A run's state as tensors and a JSON-able dict (see the module docstring)."""
    import torch

    hist = stepper.hist
    tensors: dict[str, torch.Tensor] = {
        f"param.{i}": p.detach() for i, p in enumerate(stepper.params)
    }
    opt_plain: dict[str, Any] = {}
    for i, st in stepper.opt.state_dict()["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"opt.{i}.{k}"] = v
            else:
                opt_plain[f"{i}.{k}"] = v
    for i, v in enumerate(stepper.best_state or []):
        tensors[f"best.{i}"] = v
    for name in _HISTORY:
        tensors[f"hist.{name}"] = torch.tensor(getattr(hist, name), dtype=torch.float64)
    state = {
        "epochs": hist.epochs,
        "phase": stepper.phase,
        "best_value": stepper.best_value,
        "extra": stepper.extra,
        "opt_plain": opt_plain,
        "lr_steps": hist.lr_steps,
        "checks": hist.checks,
        "stop_reason": hist.stop_reason,
        "converged": hist.converged,
        "seconds": stepper.seconds(),
        "check_rate": hist.check_rate,
    }
    return tensors, state


def unpack(stepper: Any, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
    """Set a run's state from :func:`pack`'s output; a mismatch is a ValueError naming the file."""
    hist = stepper.hist
    try:
        n = len(stepper.params)
        if sum(k.startswith("param.") for k in tensors) != n:
            msg = f"{sum(k.startswith('param.') for k in tensors)} parameters instead of {n}"
            raise ValueError(msg)
        stepper.restore([tensors[f"param.{i}"] for i in range(n)])
        opt_state: dict[int, dict[str, Any]] = {}
        for key, v in tensors.items():
            if key.startswith("opt."):
                _, i, k = key.split(".", 2)
                opt_state.setdefault(int(i), {})[k] = v
        for key, v in dict(state["opt_plain"]).items():
            i, k = key.split(".", 1)
            opt_state.setdefault(int(i), {})[k] = v
        groups = stepper.opt.state_dict()["param_groups"]
        stepper.opt.load_state_dict({"state": opt_state, "param_groups": groups})
        if any(k.startswith("best.") for k in tensors):
            stepper.best_state = [tensors[f"best.{i}"].clone() for i in range(n)]
        for name in _HISTORY:
            setattr(hist, name, [float(x) for x in tensors[f"hist.{name}"].tolist()])
        if hist.epochs != int(state["epochs"]):
            msg = f"{hist.epochs} epochs of history, {state['epochs']} recorded"
            raise ValueError(msg)
        stepper.phase = str(state["phase"])
        stepper.best_value = None if state["best_value"] is None else float(state["best_value"])
        stepper.extra = dict(state["extra"])
        hist.lr_steps = [int(x) for x in state["lr_steps"]]
        hist.checks = [dict(c) for c in state["checks"]]
        hist.stop_reason = str(state["stop_reason"])
        hist.converged = bool(state["converged"])
        hist.check_rate = float(state["check_rate"])
        stepper.seconds_before = float(state["seconds"])
        if stepper.best_value is not None and stepper.best_state is None:
            msg = "the best-so-far parameters are missing"
            raise ValueError(msg)
    except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as err:
        msg = (
            f"checkpoint file {stepper.checkpoint.path} does not fit this run "
            f"({type(err).__name__}: {err}); it is corrupt or from another fit: delete it and "
            "fit afresh"
        )
        raise ValueError(msg) from None


@contextlib.contextmanager
def deferred_signals(stepper: Any) -> Iterator[None]:
    """While checkpointing in the main thread, SIGINT/SIGTERM stop at the end of the epoch.

    The first signal sets ``stepper.pending`` (acted on at the next epoch boundary); a second
    one raises :class:`KeyboardInterrupt` at once. SIGTERM is deferred only when a Python handler
    is installed (as the CLI does); otherwise its default (terminate) stands.
    """
    if stepper.checkpoint is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if stepper.pending is not None:
            raise KeyboardInterrupt
        stepper.pending = signum

    old: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        current = signal.getsignal(sig)
        if callable(current):
            old[sig] = current
            signal.signal(sig, handler)
    try:
        yield
    finally:
        for signum, h in old.items():
            signal.signal(signum, h)
