"""Which files a knowledge base holds, and under which names.

Sources are files and directories. Every file gets a posix path relative to the root:
the deepest directory holding all the sources, where a directory given counts as
holding itself. So `edgepop index build Lib` names files `json/decoder.py`, and so do
`Lib/json Lib/textwrap.py` (with `textwrap.py` beside them), while a single file is
named by its name. Inside directories, hidden files and directories and `__pycache__`
are left out; files that are not UTF-8 text (binaries, other encodings) are skipped and
counted.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from .store import KnowledgeBaseError

ALWAYS_EXCLUDED = (".*", "__pycache__")


@dataclass(frozen=True)
class SourceFile:
    path: str  # relative to the root, posix
    text: str
    sha256: str
    size: int


@dataclass
class Sources:
    """The text files under the sources, by path in path order, and what was skipped."""

    files: dict[str, SourceFile] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # path -> why


def source_root(sources: Sequence[Path]) -> Path:
    """The deepest directory holding every source (a directory holds itself)."""
    if not sources:
        raise KnowledgeBaseError("no sources given: name the files and directories to index")
    places = []
    for source in sources:
        source = Path(os.path.abspath(source))
        if not source.exists():
            raise KnowledgeBaseError(f"{source}: no such file or directory")
        places.append(source if source.is_dir() else source.parent)
    return Path(os.path.commonpath(places))


def read_sources(sources: Sequence[Path], root: Path, exclude: Sequence[str] = ()) -> Sources:
    """Every file under `sources`, named relative to `root` (which must hold them all).

    `exclude`: glob patterns, as in .gitignore: one without a slash matches a file or
    directory by name anywhere (`site-packages`, `*.json`), one starting with a slash
    matches from the root (`/test`), any other the path (`Doc/*.txt`). A directory
    matched is not entered. A file named in `sources` is always read.
    """
    patterns = (*ALWAYS_EXCLUDED, *exclude)
    found = Sources()
    for source in sources:
        source = Path(os.path.abspath(source))
        if not source.exists():
            raise KnowledgeBaseError(f"{source}: no such file or directory")
        if not source.is_relative_to(root):
            raise KnowledgeBaseError(f"{source} is outside {root}, the directory the knowledge base's paths start from")
        for location in _files(source, root, patterns):
            path = location.relative_to(root).as_posix()
            if path not in found.files and path not in found.skipped:
                _read(location, path, found)
    found.files = dict(sorted(found.files.items()))
    return found


def _files(source: Path, root: Path, patterns: tuple[str, ...]) -> list[Path]:
    if source.is_file():
        return [source]
    files = []
    for directory, subdirectories, names in os.walk(source):
        here = Path(directory)
        subdirectories[:] = sorted(
            d for d in subdirectories if not _excluded((here / d).relative_to(root).as_posix(), d, patterns))
        files += [here / name for name in sorted(names)
                  if not _excluded((here / name).relative_to(root).as_posix(), name, patterns)]
    return files


def _excluded(path: str, name: str, patterns: tuple[str, ...]) -> bool:
    for pattern in patterns:
        if pattern.startswith("/"):
            matched = fnmatchcase("/" + path, pattern)
        else:
            matched = fnmatchcase(path if "/" in pattern else name, pattern)
        if matched:
            return True
    return False


def _read(location: Path, path: str, found: Sources) -> None:
    try:
        data = location.read_bytes()
    except OSError as e:
        found.skipped[path] = f"unreadable: {e.strerror}"
        return
    if b"\0" in data:
        found.skipped[path] = "binary"
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        found.skipped[path] = "not UTF-8"
        return
    found.files[path] = SourceFile(path, text, hashlib.sha256(data).hexdigest(), len(data))
