"""Durable file writes: what a crash may leave is the old file or the new one, never a part.

The AOT cache, the knowledge-base builder and the component store all replace files
that a running PoP reads; they write a temporary file next to the target, fsync it,
rename it over the target, and fsync the directory so the rename itself survives.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Temporary files are named `.<target name>.<random>.tmp`, so a reader can tell and skip them.
TEMP_SUFFIX = ".tmp"


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` by `data`, durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync(path.parent)


def fsync(path: Path) -> None:
    """Flush a file's contents, or a directory's entries (renames, removals), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
