"""Progress for long steps: numbered stages with timings, and a live clock on a terminal."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class Progress:
    """Prints `[i/n] what ...` when a stage starts and its duration when it ends.

    On a terminal the elapsed time of the running stage updates in place, so a step that
    takes half a minute visibly runs; in logs each stage is one line.
    """

    def __init__(self, total: int, out: TextIO | None = None, quiet: bool = False) -> None:
        self.total = total
        self.out = out or sys.stderr
        self.quiet = quiet
        self._index = 0

    @contextmanager
    def stage(self, what: str) -> Iterator[None]:
        self._index += 1
        label = f"[{self._index}/{self.total}] {what}"
        start = time.perf_counter()
        stop = threading.Event()
        ticker = None
        if not self.quiet and self.out.isatty():
            ticker = threading.Thread(target=self._tick, args=(label, start, stop), daemon=True)
            ticker.start()
        elif not self.quiet:
            print(f"{label} ...", file=self.out, flush=True)
        try:
            yield
        finally:
            stop.set()
            if ticker:
                ticker.join()
            if not self.quiet:
                elapsed = time.perf_counter() - start
                prefix = "\r\033[K" if ticker else ""
                print(f"{prefix}{label} done in {elapsed:.1f} s", file=self.out, flush=True)

    def _tick(self, label: str, start: float, stop: threading.Event) -> None:
        while not stop.wait(0.5):
            print(f"\r\033[K{label} ... {time.perf_counter() - start:.0f} s", end="", file=self.out, flush=True)
