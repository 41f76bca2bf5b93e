"""Per-API-key token quotas, enforced at the edge before a request costs the origin anything.

Each key has a bucket of `tokens_per_minute` that refills continuously (a token bucket).
A request takes its prompt tokens plus the completion tokens it may ask for; one that
does not fit is refused with the time after which it would, for `Retry-After`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from ..errors import EdgepopError
from .config import Quota


class QuotaExceeded(EdgepopError):
    def __init__(self, key_name: str, wanted: int, available: int, limit: int, retry_after_s: float) -> None:
        super().__init__(
            f"token quota exceeded for API key {key_name}: this request needs {wanted} tokens "
            f"(prompt + max_tokens), {available} of {limit} per minute are left; retry after "
            f"{math.ceil(retry_after_s)} s"
        )
        self.retry_after_s = retry_after_s


class Quotas:
    def __init__(self, quotas: dict[str, Quota], clock: Callable[[], float] = time.monotonic) -> None:
        self._quotas = quotas
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens left, when)

    def take(self, key: str, tokens: int) -> None:
        """Take `tokens` from `key`'s bucket, or raise QuotaExceeded and take nothing."""
        quota = self._quotas.get(key)
        if quota is None:
            return
        rate = quota.tokens_per_minute / 60.0
        with self._lock:
            now = self._clock()
            left, then = self._buckets.get(key, (float(quota.tokens_per_minute), now))
            left = min(float(quota.tokens_per_minute), left + (now - then) * rate)
            if tokens > left:
                self._buckets[key] = (left, now)
                # A request larger than the whole bucket never fits: say when it is full again.
                missing = min(tokens, quota.tokens_per_minute) - left
                raise QuotaExceeded(_redacted(key), tokens, int(left), quota.tokens_per_minute, max(missing / rate, 1.0))
            self._buckets[key] = (left - tokens, now)


def _redacted(key: str) -> str:
    """Enough of a key to tell which one, never the whole secret."""
    return f"{key[:6]}…" if len(key) > 8 else "…"
