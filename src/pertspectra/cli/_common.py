"""What every command shares: one error path, logging options, small parsers.

Every command is registered through :func:`command`, which

- adds ``-v/--verbose`` and ``-q/--quiet`` to the command itself (so they work after the
  subcommand as well as before it);
- turns a user mistake (a library ``ValueError``/``KeyError``/``OSError``, a diverging fit) into
  one line ``error: ...`` on stderr and exit status 1;
- prints a traceback only for anything else, which is a bug, and says so (exit status 70).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import click
import typer

#: Exceptions the library raises for a user's mistake (bad file, label, option, divergence).
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    KeyError,
    OSError,
    FloatingPointError,
)
#: Exit status of a bug (sysexits' EX_SOFTWARE).
BUG_EXIT = 70

Verbose = Annotated[int, typer.Option("-v", "--verbose", count=True, help="More log output.")]
Quiet = Annotated[bool, typer.Option("-q", "--quiet", help="Only warnings and errors.")]


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record (not at set-up)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


class _Formatter(logging.Formatter):
    """The message alone; a warning or error as ``warning: ...`` / ``error: ...``."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.levelno >= logging.WARNING:
            return f"{'warning' if record.levelno == logging.WARNING else 'error'}: {text}"
        return text


def configure_logging(verbose: int = 0, quiet: bool = False) -> None:
    """Send pertspectra's log records to stderr at the chosen level (CLI only)."""
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 0 else logging.INFO)
    handler = _StderrHandler()
    handler.setFormatter(_Formatter("%(message)s"))
    root = logging.getLogger("pertspectra")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def message(err: BaseException) -> str:
    """One line describing ``err`` (``KeyError`` without its quotes)."""
    text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
    return " ".join(str(text).split()) or type(err).__name__


def fail(text: str) -> None:
    """Print ``error: text`` to stderr and exit with status 1."""
    typer.echo(f"error: {text}", err=True)
    raise typer.Exit(code=1)


@contextlib.contextmanager
def plain_warnings() -> Iterator[None]:
    """Print the library's warnings (``UserWarning``) once each as ``warning: ...`` lines.

    Python's own format (file path, line, source) is for developers; other warning
    categories are passed on unchanged.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            seen: set[tuple[Any, ...]] = set()
            for w in caught:
                text = " ".join(str(w.message).split())
                plain = issubclass(w.category, UserWarning)
                key = (text,) if plain else (text, w.category, w.filename, w.lineno)
                if key in seen:
                    continue
                seen.add(key)
                if plain:
                    typer.echo(f"warning: {text}", err=True)
                else:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def command(app: typer.Typer, name: str | None = None) -> Callable[[Callable], Callable]:
    """Register ``func`` on ``app`` behind the shared logging options and error handler."""

    def deco(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, verbose: int = 0, quiet: bool = False, **kwargs: Any) -> Any:
            if verbose or quiet:
                configure_logging(verbose, quiet)
            try:
                with plain_warnings():
                    return func(*args, **kwargs)
            except (typer.Exit, typer.Abort, click.exceptions.ClickException):
                raise
            except USER_ERRORS as err:
                fail(message(err))
            except KeyboardInterrupt as err:  # the library's message starts "interrupted"
                typer.echo(f"error: {message(err) if err.args else 'interrupted'}", err=True)
                raise typer.Exit(code=130) from None
            except Exception as err:
                traceback.print_exc()
                typer.echo(
                    f"error: internal error ({type(err).__name__}: {message(err)}); this is a bug "
                    "in pertspectra: please report it with the command line and the traceback above",
                    err=True,
                )
                raise typer.Exit(code=BUG_EXIT) from None
            return None

        sig = inspect.signature(func, eval_str=True)
        kw = inspect.Parameter.KEYWORD_ONLY
        extra = [
            inspect.Parameter("verbose", kw, default=0, annotation=Verbose),
            inspect.Parameter("quiet", kw, default=False, annotation=Quiet),
        ]
        params = [*sig.parameters.values(), *extra]
        wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        del wrapper.__wrapped__  # typer must read the signature above, not func's
        app.command(name)(wrapper)
        return func

    return deco


def input_checksums(*inputs: str | Path | None) -> dict[str, str]:
    """SHA-256 of each input given (a folder: of its files), keyed by the path as given."""
    from .._utils import file_checksum

    return {str(p): file_checksum(p) for p in inputs if p is not None}


def provenance(*inputs: str | Path | None, seed: int | None = None) -> dict[str, Any]:
    """What every output records beside its settings: versions, the seed, each input's SHA-256."""
    import pertspectra as ps

    return {"versions": ps.model.versions(), "seed": seed, "inputs": input_checksums(*inputs)}


def split_list(values: list[str] | None) -> list[str]:
    """Flatten repeated and comma-separated option values: ``["a,b", "c"] -> ["a", "b", "c"]``."""
    out: list[str] = []
    for value in values or []:
        out += [v.strip() for v in value.split(",") if v.strip()]
    return out


def input_file(path: Path, what: str = "data file") -> Path:
    """``path`` if it is a file, else a one-line error."""
    if not path.is_file():
        msg = f"{what} {path} not found"
        raise FileNotFoundError(msg)
    return path
