"""Progress for long steps: numbered stages with timings, and a live clock on a terminal.

A stage that knows how much work it has (`total`) also counts it: on a terminal the
count and the rate update in place, and the line that ends the stage gives both.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class Counter:
    """How far a counted stage has got: the stage's work calls `advance`."""

    def __init__(self, total: int | None, unit: str) -> None:
        self.total = total
        self.unit = unit
        self.done = 0

    def advance(self, count: int = 1) -> None:
        self.done += count

    def describe(self, elapsed: float) -> str:
        rate = self.done / elapsed if elapsed > 0 else 0.0
        return f"{self.done:,}/{self.total:,} {self.unit}, {rate:,.1f} {self.unit}/s"


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
    def stage(self, what: str, total: int | None = None, unit: str = "items") -> Iterator[Counter]:
        """A stage; with `total`, the Counter it yields is shown as the work advances it."""
        self._index += 1
        label = f"[{self._index}/{self.total}] {what}"
        counter = Counter(total, unit)
        start = time.perf_counter()
        stop = threading.Event()
        ticker = None
        if not self.quiet and self.out.isatty():
            ticker = threading.Thread(target=self._tick, args=(label, counter, start, stop), daemon=True)
            ticker.start()
        elif not self.quiet:
            print(f"{label} ...", file=self.out, flush=True)
        try:
            yield counter
        finally:
            stop.set()
            if ticker:
                ticker.join()
            if not self.quiet:
                elapsed = time.perf_counter() - start
                prefix = "\r\033[K" if ticker else ""
                counted = f" ({counter.describe(elapsed)})" if total is not None else ""
                print(f"{prefix}{label} done in {elapsed:.1f} s{counted}", file=self.out, flush=True)

    def _tick(self, label: str, counter: Counter, start: float, stop: threading.Event) -> None:
        while not stop.wait(0.5):
            elapsed = time.perf_counter() - start
            counted = f"{counter.describe(elapsed)}, " if counter.total is not None else ""
            print(f"\r\033[K{label} ... {counted}{elapsed:.0f} s", end="", file=self.out, flush=True)
