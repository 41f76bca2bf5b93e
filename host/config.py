"""Runtime settings: limits every instance runs under, and where compiled code is kept."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

MiB = 1 << 20


def default_cache_dir() -> Path:
    """$EDGEPOP_CACHE_DIR, else $XDG_CACHE_HOME/edgepop, else ~/.cache/edgepop."""
    if os.environ.get("EDGEPOP_CACHE_DIR"):
        return Path(os.environ["EDGEPOP_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "edgepop"


@dataclass(frozen=True)
class Limits:
    """What one instance may use. Each request gets a fresh instance under these limits."""

    # Linear memory of one instance, in bytes (its baked heap snapshot counts).
    memory_bytes: int = 1024 * MiB
    # CPU time of one call into the guest before it is interrupted.
    call_deadline_ms: int = 10_000
    # Instantiation runs guest start code too, so it gets a deadline of its own.
    instantiate_deadline_ms: int = 1_000
    # Text larger than this is refused by the host before it reaches a guest.
    max_input_bytes: int = 16 * MiB
    # Guest stderr kept per instance, for error reports.
    stderr_bytes: int = 64 * 1024


@dataclass(frozen=True)
class RuntimeConfig:
    limits: Limits = field(default_factory=Limits)
    # Compiled (AOT) components are kept here, keyed by the component's sha256.
    cache_dir: Path = field(default_factory=default_cache_dir)
    # Granularity of deadlines: the epoch advances this often.
    epoch_tick_ms: int = 2
