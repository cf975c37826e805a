"""Small shared helpers: the version, atomic writes, rng and device resolution, progress."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

#: The package version (``pertspectra.__version__``); matches ``pyproject.toml``.
VERSION = "0.1.0"

if TYPE_CHECKING:
    import torch

    from ._types import DeviceLike, SeedLike


def package_versions(*modules: str) -> dict[str, str]:
    """``pertspectra``'s, each importable module's (its ``__version__``) and Python's version."""
    import importlib
    import sys

    out = {"pertspectra": VERSION}
    for name in modules:
        try:
            out[name] = str(importlib.import_module(name).__version__)
        except ImportError:  # pragma: no cover
            continue
    out["python"] = sys.version.split()[0]
    return out


def default_rng(rng: SeedLike) -> np.random.Generator:
    """Normalise a seed or generator to a :class:`numpy.random.Generator`."""
    return np.random.default_rng(rng)


def resolve_device(device: DeviceLike = "auto") -> torch.device:
    """Resolve ``"auto"`` to CUDA when available, else CPU; validate anything else."""
    import torch

    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        msg = (
            f"device {device!r} was requested but CUDA is not available; use device='cpu' or 'auto'"
        )
        raise ValueError(msg)
    return dev


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with ``torch.set_num_threads(n)``, restoring the previous count after.

    ``None`` leaves torch's setting alone. On a shared machine fewer threads than cores can be
    much faster: idle OpenMP threads spin while waiting for a busy core.
    """
    if n is None:
        yield
        return
    import torch

    if int(n) < 1:
        msg = f"threads must be >= 1, got {n}"
        raise ValueError(msg)
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def current_umask() -> int:
    """The process's file-mode creation mask (read without changing it where the OS allows)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _public_modes(path: Path) -> None:
    """Give ``path`` (and a folder's contents) the modes of new files under the umask.

    ``mkstemp``/``mkdtemp`` (and safetensors) create 0600/0700; outputs must be readable by
    whoever may read a normal new file (0644/0755 under umask 022, 0664/0775 under 002).
    """
    mask = current_umask()
    entries = [path]
    if path.is_dir():
        entries += [
            Path(root) / name for root, dirs, files in os.walk(path) for name in dirs + files
        ]
    for entry in entries:
        if entry.is_symlink():
            continue
        with contextlib.suppress(OSError):
            entry.chmod((0o777 if entry.is_dir() else 0o666) & ~mask)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only on success.

    A user's existing file is never left half-written: on error the temporary is removed
    and ``path`` is untouched. The result gets the mode a new file or folder gets under the
    current umask (0644 / 0755 under umask 022), not the private mode of a temporary.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise
    _public_modes(tmp)
    if directory and path.exists():
        if not path.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
            msg = f"{path} exists and is not a directory"
            raise FileExistsError(msg)
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
        old.rmdir()
        path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


def check_output_folder(
    path: str | os.PathLike,
    *,
    overwrite: bool,
    allowed: Collection[str],
    what: str,
    inputs: Iterable[str | os.PathLike | None] = (),
) -> None:
    """Refuse to write the output folder ``path`` where that could lose a user's file.

    An existing non-empty folder needs ``overwrite``; even then it is replaced only when every
    entry in it is one that belongs in ``what`` (``allowed``: file or folder names), so a folder
    holding the data, a model or notes is never swapped out; and no input may lie inside it.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        msg = f"{path} exists and is not a folder; choose another --out"
        raise FileExistsError(msg)
    here = path.resolve()
    for item in inputs:
        if item is not None and (
            Path(item).resolve() == here or here in Path(item).resolve().parents
        ):
            msg = f"the input {item} lies inside the output folder {path}; choose another --out"
            raise FileExistsError(msg)
    if not path.exists() or not any(path.iterdir()):
        return
    if not overwrite:
        msg = f"{path} exists and is not empty; pass --overwrite to replace it"
        raise FileExistsError(msg)
    foreign = sorted(p.name for p in path.iterdir() if p.name not in allowed)
    if foreign:
        shown = ", ".join(foreign[:5]) + (
            f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        )
        msg = (
            f"{path} holds files that do not belong in {what} ({shown}); it is not replaced, "
            "even with --overwrite: choose another --out"
        )
        raise FileExistsError(msg)


def file_checksum(path: str | os.PathLike) -> str:
    """SHA-256 of a file (or of a folder's files, in name order), read in 4 MiB blocks."""
    import hashlib

    path = Path(path)
    if path.is_dir():
        digest = hashlib.sha256()
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(str(child.relative_to(path)).encode())
            digest.update(file_checksum(child).encode())
        return digest.hexdigest()
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


class _LineProgress:
    """Progress for logs (CI, ``nohup``, files): one plain line every ``every`` seconds.

    Written instead of a tqdm bar when the output is not a terminal, so a log holds a few
    readable lines rather than thousands of carriage returns.
    """

    def __init__(self, total: int, desc: str, unit: str, every: float, stream: Any) -> None:
        self.total, self.desc, self.unit, self.every, self.stream = total, desc, unit, every, stream
        self.n = 0
        self.postfix = ""
        self.t0 = self.last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self._write(now)

    def set_postfix(self, **kwargs: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in kwargs.items())

    def _write(self, now: float) -> None:
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        extra = f", {self.postfix}" if self.postfix else ""
        self.stream.write(
            f"{self.desc}: {self.n:,}/{self.total:,} {self.unit}{pct}, {now - self.t0:.0f} s{extra}\n"
        )
        self.stream.flush()

    def close(self) -> None:
        if self.n and time.monotonic() - self.t0 >= self.every:
            self._write(time.monotonic())


def progress_bar(
    total: int, *, desc: str, unit: str, enabled: bool = True, every: float = 30.0
) -> Any:
    """A progress display: a tqdm bar on a terminal or in Jupyter, periodic lines otherwise.

    Parameters
    ----------
    total
        Expected number of steps.
    desc, unit
        What is counted (``"fit"``, ``"epoch"``).
    enabled
        ``False`` shows nothing.
    every
        Seconds between lines when the output is not a terminal.
    """
    import sys

    from tqdm.auto import tqdm

    stream = sys.stderr
    interactive = bool(getattr(stream, "isatty", lambda: False)()) or "ipykernel" in sys.modules
    if not enabled or interactive:
        return tqdm(total=total, desc=desc, unit=unit, disable=not enabled)
    return _LineProgress(total, desc, unit, every, stream)
