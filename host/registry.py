"""The PoP's component store: uploaded components by name, their versions, the active one.

The operator API (`PUT /admin/components/{name}` and the rest) is built on it. An upload
is refused unless it is a WebAssembly component (not a core module) under the size
limit, it compiles, it targets one of edgepop's worlds, and it imports nothing beyond
WASI 0.2 and what its world allows. It is compiled through the runtime, so the AOT
artefact is cached before the first request for it.

On disk, under the store's root:

    blobs/<sha256>.wasm    every accepted component, by the sha256 of its bytes
    names/<name>.json      one name's versions, in upload order, and its activations
    lock                   locked while a store has the directory open: one at a time

Every file is written to a temporary file beside it, fsynced, and renamed over its
target, so a crash leaves the old file or the new one, never part of one. A name's
versions and its active pointer are one file, so activating is one rename, and a crash
during an upload loses nothing that was active. What only a crash leaves behind
(temporary files, blobs no name refers to) is removed when the store is next opened.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from .config import MiB
from .errors import ComponentLoadError, EdgepopError
from .files import TEMP_SUFFIX, fsync, write_atomically
from .runtime import Runtime
from .worlds import WORLDS, shape

# Names end up in file names and URLs: nothing that could be a path or need escaping.
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_BLOB_NAME = re.compile(r"[0-9a-f]{64}\.wasm")
_FORMAT = 1


class RegistryError(EdgepopError):
    """A request to the component store was refused; the message says why."""


class BadName(RegistryError):
    def __init__(self, name: str) -> None:
        super().__init__(f"bad component name {name!r}: a name is 1 to 64 of a-z, 0-9, '.', '_' and '-', "
                         "starting with a letter or a digit")


class UnknownComponent(RegistryError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no component is named {name!r}")


class UnknownVersion(RegistryError):
    """No such sha256 among a name's versions (or, for `path`, among any name's)."""


class NoActiveVersion(RegistryError):
    """The name has versions but none was activated."""


class NothingToRollBackTo(RegistryError):
    """No version was active before the active one."""


class InvalidComponent(RegistryError):
    """An upload that is not a component this PoP can run; the message says why."""


class ComponentTooLarge(InvalidComponent):
    def __init__(self, name: str, size: int, limit: int) -> None:
        super().__init__(f"the upload for {name!r} is {size} bytes ({size / MiB:.1f} MiB), over the limit of "
                         f"{limit} bytes ({limit / MiB:.1f} MiB)")
        self.size, self.limit = size, limit


@dataclass(frozen=True)
class Version:
    """One uploaded component of a name: `world` is the edgepop world it targets, `uploaded_at` in UTC."""

    sha256: str
    size: int
    uploaded_at: datetime
    world: str
    active: bool = False


class ComponentStore:
    """Components by name in a directory, each with its versions and at most one active.

    Thread-safe. One store per directory at a time (a lock file says so), so that what
    it cleans up at opening is never another store's work in progress.
    """

    def __init__(self, root: str | os.PathLike[str], runtime: Runtime, max_bytes: int = 256 * MiB) -> None:
        self.root = Path(root)
        self.runtime = runtime
        self.max_bytes = max_bytes
        self._blobs = self.root / "blobs"
        self._names = self.root / "names"
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._names.mkdir(exist_ok=True)
        self._lock = threading.Lock()
        # Blobs of uploads being validated: written, in no history yet, not to be collected.
        self._pending: Counter[str] = Counter()
        self._lock_fd: int | None = _lock_directory(self.root)
        try:
            self._histories = self._open()
        except BaseException:
            self.close()
            raise

    def upload(self, name: str, data: bytes, activate: bool = True) -> Version:
        """Validate `data`, compile it, and keep it as a version of `name`, activated unless told not to.

        Bytes identical to one of the name's versions add no version; that version is returned
        (and activated, if asked).
        """
        _check_name(name)
        if len(data) > self.max_bytes:
            raise ComponentTooLarge(name, len(data), self.max_bytes)
        _check_preamble(name, data)
        sha256 = hashlib.sha256(data).hexdigest()
        try:
            with self._lock:
                self._pending[sha256] += 1
                blob = self._blob(sha256)
                if not blob.exists():
                    write_atomically(blob, data)
            world = self._validate(name, blob)  # compiling takes seconds: not under the lock
            with self._lock:
                history = self._histories.get(name, _History(name))
                updated = history.with_version(Version(sha256, len(data), datetime.now(timezone.utc), world))
                if activate:
                    updated = updated.activated(sha256)
                self._save(updated)
                return updated.version(sha256)
        finally:
            with self._lock:
                self._pending[sha256] -= 1
                if not self._pending[sha256]:
                    del self._pending[sha256]
                self._collect([sha256])  # refused or not recorded: its blob goes

    def activate(self, name: str, sha256: str) -> Version:
        """Make `sha256`, one of `name`'s versions, the one that serves."""
        with self._lock:
            updated = self._history(name).activated(sha256)
            self._save(updated)
            return updated.version(sha256)

    def rollback(self, name: str, to: str | None = None) -> Version:
        """Activate `to` (any of the name's versions), or else the version active before the active one.

        Without `to`, rolling back again goes one activation further back.
        """
        with self._lock:
            history = self._history(name)
            updated = history.activated(to) if to is not None else history.rolled_back()
            self._save(updated)
            return updated.active()

    def versions(self, name: str) -> list[Version]:
        """The name's versions, oldest first."""
        with self._lock:
            return self._history(name).listed()

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._histories)

    def active(self, name: str) -> Version:
        with self._lock:
            return self._history(name).active()

    def delete(self, name: str) -> None:
        """Forget `name` and its versions; blobs no other name uses are removed.

        A component already loaded keeps working: the runtime holds its compiled code.
        """
        with self._lock:
            history = self._history(name)
            (self._names / f"{name}.json").unlink()
            fsync(self._names)
            del self._histories[name]
            self._collect(v.sha256 for v in history.versions)

    def path(self, sha256: str) -> Path:
        """The stored bytes of version `sha256` of any name, for `Runtime.load`."""
        with self._lock:
            if not self._referenced(sha256):
                raise UnknownVersion(f"no component in this store has version {sha256!r}")
            return self._blob(sha256)

    def close(self) -> None:
        """Release the directory for another store (a restarted PoP, say)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _validate(self, name: str, blob: Path) -> str:
        """The name of the world the component at `blob` targets, compiling it through the runtime."""
        try:
            loaded = self.runtime.load(blob)
        except ComponentLoadError as e:
            reason = str(e).replace(str(blob.resolve()), "it")  # the blob's path means nothing to the uploader
            raise InvalidComponent(f"the upload for {name!r} is not a valid component: {reason}") from None
        found = shape(loaded.component, self.runtime.engine)
        world = found.world()
        if world is None:
            expected = "; ".join(f"{w.name} exports {', '.join(sorted(w.exports))}" for w in WORLDS)
            raise InvalidComponent(f"the upload for {name!r} targets none of edgepop's worlds: it exports "
                                   f"{', '.join(found.exports) or 'nothing'} ({expected})")
        unexpected = found.unexpected_imports(world)
        if unexpected:
            allowed = "".join(f", {i}" for i in sorted(world.imports))
            raise InvalidComponent(f"the upload for {name!r} imports what its world {world.name} does not "
                                   f"provide: {', '.join(unexpected)} (it provides WASI 0.2{allowed})")
        return world.name

    def _history(self, name: str) -> _History:
        history = self._histories.get(name)
        if history is None:
            raise UnknownComponent(name)
        return history

    def _save(self, history: _History) -> None:
        """Replace the name's metadata file, then (only if that worked) what this store holds in memory."""
        if history == self._histories.get(history.name):
            return
        write_atomically(self._names / f"{history.name}.json", history.to_json())
        self._histories[history.name] = history

    def _referenced(self, sha256: str) -> bool:
        return any(sha256 in history for history in self._histories.values())

    def _collect(self, candidates: Iterable[str]) -> None:
        """Remove the blobs among `candidates` that no name refers to and no upload is validating."""
        for sha256 in candidates:
            if sha256 not in self._pending and not self._referenced(sha256):
                self._blob(sha256).unlink(missing_ok=True)

    def _blob(self, sha256: str) -> Path:
        return self._blobs / f"{sha256}.wasm"

    def _open(self) -> dict[str, _History]:
        """The histories on disk, after removing what an interrupted write left behind."""
        for directory in (self._blobs, self._names):
            for leftover in directory.glob(f".*{TEMP_SUFFIX}"):
                leftover.unlink()
        histories = {}
        for path in sorted(self._names.glob("*.json")):
            if NAME_PATTERN.fullmatch(path.stem):
                history = histories[path.stem] = _History.read(path)
                for version in history.versions:
                    if not self._blob(version.sha256).exists():
                        raise RegistryError(f"{path} lists version {version.sha256} of {path.stem!r}, "
                                            f"but {self._blob(version.sha256)} is missing")
        referenced = {v.sha256 for history in histories.values() for v in history.versions}
        for blob in self._blobs.glob("*.wasm"):
            if _BLOB_NAME.fullmatch(blob.name) and blob.stem not in referenced:
                blob.unlink()  # written by an upload that crashed before recording it
        return histories


@dataclass(frozen=True)
class _History:
    """One name's versions in upload order (`active` False in all: `listed` sets it), and
    its activations: sha256s by their last activation, the active one last."""

    name: str
    versions: tuple[Version, ...] = ()
    activations: tuple[str, ...] = ()

    def __contains__(self, sha256: str) -> bool:
        return any(v.sha256 == sha256 for v in self.versions)

    def with_version(self, version: Version) -> _History:
        if version.sha256 in self:
            return self
        return replace(self, versions=(*self.versions, version))

    def activated(self, sha256: str) -> _History:
        self.version(sha256)  # known, else UnknownVersion
        return replace(self, activations=(*(a for a in self.activations if a != sha256), sha256))

    def rolled_back(self) -> _History:
        if not self.activations:
            raise NothingToRollBackTo(f"component {self.name!r} has no active version to roll back from")
        if len(self.activations) == 1:
            raise NothingToRollBackTo(f"component {self.name!r} had no active version before "
                                      f"{self.activations[0][:12]}")
        return replace(self, activations=self.activations[:-1])

    def version(self, sha256: str) -> Version:
        for version in self.versions:
            if version.sha256 == sha256:
                return replace(version, active=sha256 == self._active_sha256())
        known = ", ".join(v.sha256[:12] for v in self.versions)
        raise UnknownVersion(f"component {self.name!r} has no version {sha256!r} (its versions: {known})")

    def active(self) -> Version:
        sha256 = self._active_sha256()
        if sha256 is None:
            raise NoActiveVersion(f"component {self.name!r} has no active version: activate one of its "
                                  f"{len(self.versions)} versions")
        return self.version(sha256)

    def listed(self) -> list[Version]:
        active = self._active_sha256()
        return [replace(v, active=v.sha256 == active) for v in self.versions]

    def _active_sha256(self) -> str | None:
        return self.activations[-1] if self.activations else None

    def to_json(self) -> bytes:
        versions = [{"sha256": v.sha256, "size": v.size, "uploaded_at": v.uploaded_at.isoformat(), "world": v.world}
                    for v in self.versions]
        document = {"format": _FORMAT, "versions": versions, "activations": list(self.activations)}
        return (json.dumps(document, indent=2) + "\n").encode()

    @classmethod
    def read(cls, path: Path) -> _History:
        try:
            document = json.loads(path.read_bytes())
            if document["format"] != _FORMAT:
                raise ValueError(f"format {document['format']!r}, this edgepop reads format {_FORMAT}")
            versions = tuple(
                Version(v["sha256"], int(v["size"]), datetime.fromisoformat(v["uploaded_at"]), v["world"])
                for v in document["versions"]
            )
            history = cls(path.stem, versions, tuple(document["activations"]))
            for sha256 in history.activations:
                history.version(sha256)
        except (ValueError, KeyError, TypeError, RegistryError) as e:
            raise RegistryError(f"{path} is not a component store's metadata: {e}") from None
        return history


def _check_name(name: str) -> None:
    if not NAME_PATTERN.fullmatch(name):
        raise BadName(name)


def _check_preamble(name: str, data: bytes) -> None:
    """Refuse, before writing or compiling anything, what is not a component by its first 8 bytes.

    They are the magic `\\0asm`, a 16-bit version and a 16-bit layer: layer 0 is a core
    module (version 1), layer 1 a component.
    """
    if len(data) < 8 or data[:4] != b"\0asm":
        raise InvalidComponent(f"the upload for {name!r} is not a WebAssembly binary "
                               f"(it does not start with the magic bytes \\0asm)")
    layer = int.from_bytes(data[6:8], "little")
    if layer == 0:
        raise InvalidComponent(f"the upload for {name!r} is a core module, not a component "
                               "(build it as a component, e.g. with componentize-py or `wasm-tools component new`)")
    if layer != 1:
        raise InvalidComponent(f"the upload for {name!r} is a WebAssembly binary of unknown layer {layer}, "
                               "not a component")


def _lock_directory(root: Path) -> int:
    fd = os.open(root / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RegistryError(f"{root} is open in another component store; close that one first") from None
    return fd
