"""What keeps the map API responsive under abuse: an audit log written in batches off the request path, and rate
limits per address and per API key.

Every refusal is still audited, but a flood of them costs one Delta commit per batch (at most one a second by
default), not one per request under a lock. Requests over the limits get 429 with a Retry-After header.

Limits (requests per second sustained, with a burst allowance) come from the environment:
`CRIMELAKE_RATE_PER_SECOND` (default 50) and `CRIMELAKE_RATE_BURST` (default 500) per client address and per
API key (behind a reverse proxy every user shares the proxy's address: raise them there);
`CRIMELAKE_REFUSALS_PER_MINUTE` (default 30, also the burst) requests per address refused for an unknown key,
after which that address's requests carrying a key are turned away with 429 until the allowance refills (a key
cannot be guessed by trying many; keyless public requests from the address are still served).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from crimelake import audit
from crimelake.config import Settings, env_rate
from crimelake.serve.layers import RequestError

log = logging.getLogger("crimelake.serve")


class AuditBuffer:
    """Audit entries queued by requests and appended to the audit log in one commit per batch, by a background
    thread every `flush_seconds` (or sooner once `max_rows` are waiting). `flush()` writes what is queued now;
    `close()` stops the thread after a last flush."""

    def __init__(self, settings: Settings, flush_seconds: float = 1.0, max_rows: int = 1000):
        self.settings = settings
        self.flush_seconds = flush_seconds
        self.max_rows = max_rows
        self._rows: list[dict] = []
        self._cond = threading.Condition()
        self._write = threading.Lock()  # one writer of the log at a time: the thread or an explicit flush
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="audit-writer", daemon=True)
        self._thread.start()

    def add(self, action: str, target: str, detail: dict | None = None, *, who: str | None = None) -> None:
        entry = audit.entry(action, target, detail, who=who)
        with self._cond:
            self._rows.append(entry)
            if len(self._rows) >= self.max_rows:
                self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._rows)

    def flush(self) -> int:
        """Append every queued entry in one commit; the number written. A lake that cannot be written is logged
        and the entries kept for the next attempt."""
        with self._write:
            with self._cond:
                rows, self._rows = self._rows, []
            if not rows:
                return 0
            try:
                audit.append(self.settings, rows)
            except OSError as e:
                log.error("could not write %d audit entries (kept for the next attempt): %s", len(rows), e)
                with self._cond:
                    self._rows[:0] = rows
                return 0
            return len(rows)

    def _loop(self) -> None:
        while True:
            with self._cond:
                if not self._stop and len(self._rows) < self.max_rows:
                    self._cond.wait(self.flush_seconds)
                stop = self._stop
            self.flush()
            if stop:
                return

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout=30)
        self.flush()


class TooManyRequests(RequestError):
    status = 429

    def __init__(self, message: str, retry_after: float):
        super().__init__(f"{message}; retry after {math.ceil(retry_after)} s")
        self.retry_after = math.ceil(retry_after)


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Token buckets by name: `rate` tokens a second refill up to `burst`. `take(name)` spends one and returns
    None, or the seconds until one is available; `peek(name)` says the same without spending. `clock` gives the
    time in seconds (monotonic by default)."""

    def __init__(self, rate: float, burst: float, max_buckets: int = 100_000,
                 clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.max_buckets, self.clock = rate, burst, max_buckets, clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def _refilled(self, name: str, now: float) -> _Bucket:
        b = self._buckets.get(name)
        if b is None:
            if len(self._buckets) >= self.max_buckets:
                # Forget the buckets that have refilled: they hold nothing a new bucket would not.
                full = [k for k, v in self._buckets.items() if v.tokens + (now - v.at) * self.rate >= self.burst]
                for k in full:
                    del self._buckets[k]
            b = self._buckets[name] = _Bucket(self.burst, now)
        b.tokens = min(self.burst, b.tokens + (now - b.at) * self.rate)
        b.at = now
        return b

    def take(self, name: str, now: float | None = None) -> float | None:
        now = self.clock() if now is None else now
        with self._lock:
            b = self._refilled(name, now)
            if b.tokens >= 1:
                b.tokens -= 1
                return None
            return (1 - b.tokens) / self.rate

    def peek(self, name: str, now: float | None = None) -> float | None:
        now = self.clock() if now is None else now
        with self._lock:
            b = self._refilled(name, now)
            return None if b.tokens >= 1 else (1 - b.tokens) / self.rate


@dataclass
class Limits:
    """The API's limiters, from the environment (see the module docstring)."""

    requests: RateLimiter
    refusals: RateLimiter

    @classmethod
    def from_env(cls) -> Limits:
        per_minute = env_rate("CRIMELAKE_REFUSALS_PER_MINUTE", 30)
        return cls(RateLimiter(env_rate("CRIMELAKE_RATE_PER_SECOND", 50), env_rate("CRIMELAKE_RATE_BURST", 500)),
                   RateLimiter(per_minute / 60, per_minute))
