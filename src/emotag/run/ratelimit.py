"""A client-side request pacer shared by all workers: an RPM ceiling and 429 back-off."""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress


class RateGate:
    """Hands out send slots at most `rpm` per minute, evenly spaced, so there is no burst.

    After a 429 (`pause()`), every worker waits out the delay, then a single probe request
    goes first; the others follow only once it got through (`release()`). A quota storm
    therefore slows the whole run instead of each worker retrying on its own.
    """

    def __init__(self, rpm: float | None = None, halt: asyncio.Event | None = None) -> None:
        self.interval = 60.0 / rpm if rpm else 0.0
        self.halt = halt  # once set, nobody waits any longer: the run is stopping
        self.strikes = 0
        self._next = 0.0
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        self._recovering = False
        self._probe_out = False
        self._recovered = asyncio.Event()
        self._recovered.set()

    async def wait(self) -> None:
        while True:
            if self.halt is not None and self.halt.is_set():
                return
            async with self._lock:
                if not self._recovering or not self._probe_out:
                    self._probe_out = self._recovering
                    now = time.monotonic()
                    start = max(now, self._next, self._paused_until)
                    self._next = start + self.interval
                    break
            await self._recovered.wait()
        if start > now:
            if self.halt is None:
                await asyncio.sleep(start - now)
            else:
                with suppress(TimeoutError):
                    await asyncio.wait_for(self.halt.wait(), start - now)

    def open_all(self) -> None:
        """Wake every waiter (the run is stopping: `halt` is set)."""
        self._recovered.set()

    def pause(self, server_delay: float | None) -> float:
        """Hold all sends back after a 429; without a server hint, back off exponentially."""
        self.strikes += 1
        delay = server_delay if server_delay is not None else min(60.0, 0.5 * 2**self.strikes)
        self._paused_until = max(self._paused_until, time.monotonic() + delay)
        self._recovering = True
        self._probe_out = False  # the next sender becomes the probe
        self._recovered.clear()
        return delay

    def release(self) -> None:
        """A request ended without a 429: the quota is back, let everyone through."""
        self.strikes = 0
        if self._recovering:
            self._recovering = False
            self._probe_out = False
            self._recovered.set()
