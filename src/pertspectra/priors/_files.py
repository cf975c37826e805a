"""Text-file helpers shared by the readers of priors: gzip detection, headers, chunk size."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import IO

#: Rows per chunk when streaming large tables.
CHUNKSIZE = 500_000


def open_text(path: Path) -> IO[str]:
    """Open a text file for reading, gunzipping it when it starts with the gzip magic bytes."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def read_header(path: str | Path) -> str:
    """First line of a (possibly gzipped) text file, without the newline."""
    path = Path(path)
    if not path.is_file():
        msg = f"file not found: {path}"
        raise FileNotFoundError(msg)
    with open_text(path) as fh:
        return fh.readline().rstrip("\r\n")


def split_header(line: str) -> tuple[list[str], str]:
    """Column names of a header line and its separator (tab, comma or space, in that order)."""
    for sep in ("\t", ",", " "):
        if sep in line:
            return [c.strip() for c in line.split(sep)], sep
    return [line.strip()], "\t"
