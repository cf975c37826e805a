"""``pertspectra fit``'s checkpoint: where it lives, ``--resume``, SIGTERM, the resume hint.

While ``pertspectra fit ... --out DIR`` runs, its checkpoint lives in ``DIR/checkpoint/``
(:mod:`pertspectra.train._checkpoint`); saving the model replaces ``DIR`` as a whole, which
removes it. An interrupted fit (Ctrl-C, SIGTERM) exits with status 130 and says how to continue:
the same command with ``--resume DIR`` (``--out`` may then be left out).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: Sub-folder of the model folder holding the checkpoint of a running fit.
CHECKPOINT_DIR = "checkpoint"


def resolve_out(out: Path | None, resume: Path | None) -> Path:
    """The model folder: ``--out``, or ``--resume``'s folder (both given: they must agree)."""
    if out is None and resume is None:
        msg = "--out is required: the model folder to write (or --resume DIR to continue a fit)"
        raise ValueError(msg)
    if out is not None and resume is not None and out.resolve() != resume.resolve():
        msg = f"--out {out} and --resume {resume} differ; --resume DIR continues the fit into DIR"
        raise ValueError(msg)
    return out if out is not None else resume  # type: ignore[return-value]


def prepare(out: Path, *, resume: bool, overwrite: bool) -> Path:
    """Check ``out`` before any heavy work; return the checkpoint folder to fit with."""
    from ..train._checkpoint import INFO

    ck = out / CHECKPOINT_DIR
    if resume:
        if overwrite:
            msg = "--resume continues a fit and --overwrite starts afresh: pass only one"
            raise ValueError(msg)
        if not (ck / INFO).is_file():
            msg = (
                f"{out} holds no interrupted fit to resume ({ck / INFO} not found); "
                "run the command without --resume"
            )
            raise FileNotFoundError(msg)
        return ck
    if ck.exists():
        if not overwrite:
            msg = (
                f"{out} holds the checkpoint of an interrupted fit: continue it with the same "
                f"command and --resume {out}, or pass --overwrite to start afresh"
            )
            raise FileExistsError(msg)
        shutil.rmtree(ck)
    elif (
        out.is_dir() and not overwrite and not (out / "model.json").exists() and any(out.iterdir())
    ):
        msg = (
            f"{out} exists and is not an empty folder or a pertspectra model; choose another --out"
        )
        raise FileExistsError(msg)
    return ck


def only_checkpoint(out: Path) -> bool:
    """Whether ``out`` holds nothing but a fit's checkpoint (so saving may replace it)."""
    return out.is_dir() and {p.name for p in out.iterdir()} <= {CHECKPOINT_DIR}


@contextlib.contextmanager
def interruptible(out: Path, ck: Path, *, resume: bool) -> Iterator[None]:
    """Run the fit with SIGTERM acting as Ctrl-C; an interruption says how to resume.

    On any other error the checkpoint this run started is removed (and ``out`` when the run
    created it and it is left empty): rerunning would fail the same way.
    """
    main = threading.current_thread() is threading.main_thread()
    existed = out.exists()
    old = signal.getsignal(signal.SIGTERM) if main else None

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    if main:
        signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    except KeyboardInterrupt as err:
        when = interrupted_when(err)
        if any(ck.glob("init*.safetensors")):
            msg = (
                f"{when}; the fit so far is kept in {ck}: continue it with the same command "
                f"and --resume {out}"
            )
        else:
            msg = f"{when}; no checkpoint was written yet: run the command again"
        raise KeyboardInterrupt(msg) from None
    except BaseException:
        if not resume:
            shutil.rmtree(ck, ignore_errors=True)
            if not existed and out.is_dir() and not any(out.iterdir()):
                out.rmdir()
        raise
    finally:
        if main and old is not None:
            signal.signal(signal.SIGTERM, old)


def interrupted_when(err: KeyboardInterrupt) -> str:
    """The "interrupted after epoch N" part of the library's interrupt message."""
    return str(err.args[0]).split(";")[0] if err.args else "interrupted"
