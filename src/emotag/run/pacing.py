"""When to send and when to try again: the rate gate every sender shares (an RPM ceiling,
a shared pause with one probe after a 429), the back-off between attempts, and the
stalls that stop a run (nothing but 429s, or no answer at all, for too long)."""

from __future__ import annotations

import asyncio
import random
import time
from contextlib import suppress

from tenacity import RetryCallState
from tenacity.wait import wait_exponential_jitter

from emotag.errors import NetworkError, Throttled, TransientAPIError


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


def backoff(state: RetryCallState) -> float:
    """429s wait in the shared gate; a server's RetryInfo delay is honoured; else
    exponential with jitter."""
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, Throttled):
        return 0.0
    if isinstance(error, TransientAPIError) and error.retry_after is not None:
        return error.retry_after * random.uniform(1.0, 1.2)
    cap = 5.0 if isinstance(error, NetworkError) else 30.0
    return float(wait_exponential_jitter(initial=0.5, max=cap, jitter=0.5)(state))


class Stall:
    """How long one kind of run-wide failure has gone on with no success in between."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.since: float | None = None
        self.last = ""

    def failed(self, reason: str) -> bool:
        """Note a failure; True once they have lasted `limit` seconds."""
        now = time.monotonic()
        self.since = now if self.since is None else self.since
        self.last = reason
        return now - self.since >= self.limit

    def reset(self) -> None:
        self.since = None
