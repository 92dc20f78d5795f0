"""A client-side request pacer shared by all workers: an RPM ceiling and 429 back-off."""

from __future__ import annotations

import asyncio
import time


class RateGate:
    """Hands out send slots at most `rpm` per minute, evenly spaced, so there is no burst.

    A 429 calls `pause()`, which holds every worker back, so a quota storm slows the whole
    run instead of each worker retrying on its own.
    """

    def __init__(self, rpm: float | None = None) -> None:
        self.interval = 60.0 / rpm if rpm else 0.0
        self._next = 0.0
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        self.strikes = 0

    async def wait(self) -> None:
        async with self._lock:
            now = time.monotonic()
            start = max(now, self._next, self._paused_until)
            self._next = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)

    def pause(self, server_delay: float | None) -> float:
        """Hold all sends back after a 429; without a server hint, back off exponentially."""
        self.strikes += 1
        delay = server_delay if server_delay is not None else min(60.0, 0.5 * 2**self.strikes)
        self._paused_until = max(self._paused_until, time.monotonic() + delay)
        return delay

    def ok(self) -> None:
        self.strikes = 0
