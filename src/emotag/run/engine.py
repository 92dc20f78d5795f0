"""The live run: stream paths, plan each in a thread, send with bounded concurrency, and
record each result as it arrives.

Planning (read, hash, prepare) runs ahead of sending, in a few threads: up to
`concurrency` images wait prepared, so a finished request is followed by the next at once
instead of by a decode, and a wave of answers arriving together no longer has every
request of the next wave wait for the cores (docs/performance.md).

What the run's failures cost follows the real API: a 5xx or a timeout costs the image one
attempt; a 429 or an unreachable server costs none (they are properties of the run); a
daily quota, a fatal refusal, or a stall (nothing but 429s for `max_wait`, nothing but
network errors for `OUTAGE_AFTER`) stops the run with no image blamed. Until the provider
knows which optional settings its model accepts, one request goes out alone.

Pure of CLI and rendering: progress goes out through the recorder's events.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Final

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from emotag.errors import (
    AnswerError,
    EmotagError,
    FatalAPIError,
    NetworkError,
    RunStalled,
    Throttled,
    TransientAPIError,
)
from emotag.files import images
from emotag.files.settings import usable_cores
from emotag.providers import Provider
from emotag.providers.answers import Answer
from emotag.records import Failure, Label
from emotag.run.cascade import Cascade
from emotag.run.options import TagOptions
from emotag.run.outcome import decide
from emotag.run.pacing import RateGate, Stall, backoff
from emotag.run.planner import Step, claimed, plan
from emotag.run.recorder import Recorder, Summary
from emotag.run.resume import ResumeIndex

OUTAGE_AFTER: Final = 30.0  # seconds of nothing but network errors before the run stops

Source = Callable[[Callable[[Path, str], None]], Iterable[Path]]


_DONE = object()


class _Stopping(Exception):
    """The run is stopping after a run-ending answer: this worker sends nothing more."""


class Engine:
    """Labels every path a source yields, through `provider`, into `recorder`."""

    def __init__(
        self,
        provider: Provider,
        recorder: Recorder,
        index: ResumeIndex,
        options: TagOptions | None = None,
        cascade: Cascade | None = None,
    ) -> None:
        self.provider = provider
        self.recorder = recorder
        self.index = index
        self.cascade = cascade
        self.options = options = options or TagOptions()
        self.summary: Summary = recorder.summary
        self._halt = asyncio.Event()  # set when the run stops: no one waits any longer
        self._gate = RateGate(options.rpm, self._halt)
        self._probe = asyncio.Lock()
        self._outage = Stall(OUTAGE_AFTER)
        self._throttling = Stall(options.max_wait)
        self._outcomes: dict[str, asyncio.Future[Label | Failure]] = {}
        self._stopped: FatalAPIError | None = None
        # With a cascade, a stopped run still records what the offline model settles (it
        # costs nothing); only what needs the paid provider waits for the next run.
        self._settling = cascade is not None
        self._stop_feeding = threading.Event()

    async def run(self, source: Source) -> Summary:
        """Label every path `source` yields; `source` gets a callback for paths it must skip."""
        started = time.monotonic()
        paths: asyncio.Queue[object] = asyncio.Queue()
        slots = max(1, self.options.concurrency)
        ready: asyncio.Queue[object] = asyncio.Queue(maxsize=slots)  # planned, not yet sent
        stop = self._stop_feeding
        loop = asyncio.get_running_loop()
        try:
            feeder = loop.run_in_executor(None, self._feed, source, paths, loop, stop)
            async with asyncio.TaskGroup() as group:
                planners = min(slots, _planners())
                planning = [group.create_task(self._planner(paths, ready)) for _ in range(planners)]
                planned = group.create_task(_end_after(planning, ready))
                await asyncio.wait([group.create_task(self._sender(ready)) for _ in range(slots)])
                for task in (*planning, planned):
                    task.cancel()  # only still running when the run stopped early
            await feeder
        except BaseExceptionGroup as group_error:
            raise self._stopped_by(group_error) from None
        finally:
            stop.set()
            if self._stopped is not None:
                self._stopped.saved = self.summary.labelled
            self.recorder.finished(self.provider.settings.refusals, time.monotonic() - started)
        if self._stopped is not None:
            raise self._stopped
        return self.summary

    @staticmethod
    def _stopped_by(group: BaseExceptionGroup[BaseException]) -> BaseException:
        """The error that broke the run (a full disk), not a group of them."""
        leaves = list(_leaves(group))
        return next((e for e in leaves if isinstance(e, EmotagError)), leaves[0])

    def _feed(
        self,
        source: Source,
        queue: asyncio.Queue[object],
        loop: asyncio.AbstractEventLoop,
        stop: threading.Event,
    ) -> None:
        """Runs in a thread so a huge folder listing never blocks sending."""

        def skip(path: Path, reason: str) -> None:
            loop.call_soon_threadsafe(self.recorder.failed_path, path, reason)

        # Paths go over in batches that double up to 512, so the first one leaves at once
        # but a 100k-file folder does not queue 100k callbacks ahead of the workers.
        batch: list[Path] = []
        limit = 1
        try:
            for path in source(skip):
                if stop.is_set():
                    return
                batch.append(path)
                if len(batch) >= limit:
                    loop.call_soon_threadsafe(self._found, queue, batch)
                    batch, limit = [], min(limit * 2, 512)
        finally:
            if batch:
                loop.call_soon_threadsafe(self._found, queue, batch)
            loop.call_soon_threadsafe(queue.put_nowait, _DONE)

    def _found(self, queue: asyncio.Queue[object], paths: list[Path]) -> None:
        self.recorder.found(len(paths), str(paths[-1]))
        for path in paths:
            queue.put_nowait(path)

    async def _planner(self, paths: asyncio.Queue[object], ready: asyncio.Queue[object]) -> None:
        while self._stopped is None or self._settling:
            item = await paths.get()
            if item is _DONE:
                paths.put_nowait(_DONE)  # let the other planners see the end too
                return
            await ready.put(
                await asyncio.to_thread(
                    plan, str(item), self.index, self.options.max_side, self.cascade
                )
            )

    async def _sender(self, ready: asyncio.Queue[object]) -> None:
        while self._stopped is None or self._settling:
            step = await ready.get()
            if not isinstance(step, Step):
                ready.put_nowait(_DONE)  # let the other senders see the end too
                return
            if self._stopped is not None and step.kind in ("send", "pending"):
                continue  # stopped: what needs the paid provider waits for the next run
            try:
                # Claimed only now, in the loop, so a copy's future exists before it waits.
                await self._process(claimed(step, self.index))
            except _Stopping:
                if not self._settling:
                    return

    async def _process(self, step: Step) -> None:
        if step.kind == "pending":
            await self._follow(step)
        elif step.kind == "send" and step.image is not None:
            future = asyncio.get_running_loop().create_future()
            self._outcomes[step.digest] = future
            try:
                row = await self._label(step.path, step.digest, step.image)
            except BaseException:
                future.cancel()  # its copies follow the run's stop instead
                raise
            if isinstance(row, Label) and step.local is not None:
                row.local_emotion = step.local.local_emotion
                row.local_confidence = step.local.local_confidence
            future.set_result(row)
            self.index.settled(step.digest, row)
            self.recorder.result(row)
        else:
            self.recorder.step(step)

    async def _follow(self, step: Step) -> None:
        """A copy of bytes sent for another path in this run gets that path's outcome."""
        future = self._outcomes[step.digest]
        try:
            row = await asyncio.shield(future)
        except asyncio.CancelledError:
            if future.cancelled() and self._stopped is not None:
                raise _Stopping from None
            raise
        self.recorder.same_as(row, step.path)

    async def _label(self, path: str, digest: str, image: images.Prepared) -> Label | Failure:
        """Ask for the answers these bytes still need, record each as it is paid for, and
        judge them all (with --votes, together with the ones paid for before)."""
        model = self.recorder.model
        votes = self.index.votes
        reported = ""
        try:
            # With --votes, all of them paid before (a copy's, a top-up's) may need none.
            while (need := self.index.missing(digest)) > 0 or not self.index.answers(digest):
                for answer in await self._send(image, max(1, need)):
                    self.recorder.paid(digest, answer, vote=votes > 1)
                    self.index.paid_for(digest, answer)
                    last, reported = answer, answer.model_version
                if votes == 1:
                    break
        except AnswerError as exc:
            return Failure(path, str(exc), model, digest)
        except (TransientAPIError, TimeoutError) as exc:
            reason = str(exc) or f"no answer within {self.options.timeout:g}s"
            return Failure(
                path, f"gave up after {self.options.attempts} attempts: {reason}", model, digest
            )
        answers = [last] if votes == 1 else self.index.answers(digest)
        row = decide(
            answers, path, digest, model, skip_multi_face=self.options.skip_multi_face, votes=votes
        )
        if isinstance(row, Label) and self.provider.reports_model and reported:
            row.model = reported  # the name the server answered under (a snapshot, a tag)
        return row

    async def _send(self, image: images.Prepared, n: int) -> list[Answer]:
        free = 0  # attempts that cost the image nothing: throttled or unreachable

        def out_of_attempts(state: RetryCallState) -> bool:
            return state.attempt_number - free >= self.options.attempts

        retrying = AsyncRetrying(
            stop=out_of_attempts,
            retry=retry_if_exception_type((TransientAPIError, TimeoutError)),
            wait=backoff,
            sleep=self._nap,
            before_sleep=self._note_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                try:
                    return await self._attempt(image, n)
                except (Throttled, NetworkError):
                    free += 1
                    raise
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def _attempt(self, image: images.Prepared, n: int) -> list[Answer]:
        """One request; until the model's settings are known, one at a time."""
        if not self.provider.settings.settled:
            async with self._probe:
                # Re-checked under the lock: the probe ahead may have settled them.
                if not self.provider.settings.settled:
                    await self._gate.wait()
                    return await self._request(image, n)
        await self._gate.wait()
        return await self._request(image, n)

    async def _request(self, image: images.Prepared, n: int) -> list[Answer]:
        """One request; a run-ending answer stops new requests but lets those in flight
        finish and be recorded (they may already be paid for)."""
        if self._stopped is not None:
            raise _Stopping
        try:
            return await self._exchange(image, n)
        except FatalAPIError as exc:
            if self._stopped is None:
                self._stopped = exc
                if not self._settling:
                    self._stop_feeding.set()
                self._halt.set()
                self._gate.open_all()
            raise _Stopping from exc

    async def _exchange(self, image: images.Prepared, n: int) -> list[Answer]:
        self.recorder.requested()
        try:
            async with asyncio.timeout(self.options.timeout):
                answers = await self.provider.label(image, n)
        except Throttled as exc:
            self.recorder.throttled()
            self._outage.reset()
            self._gate.pause(exc.retry_after)
            if self._throttling.failed(str(exc)):
                raise RunStalled(
                    f"Throttled (429) by the API for {self.options.max_wait:g}s with no answer "
                    "in between",
                    then="Lower --rpm or --concurrency, or run the same command later; "
                    "nothing was lost",
                ) from None
            raise
        except NetworkError as exc:
            self._gate.release()
            if self._outage.failed(str(exc)):
                raise RunStalled(
                    f"Cannot reach the {self.provider.service} API at {self.provider.endpoint}: "
                    f"{exc}",
                    then="Run the same command again; nothing was lost",
                ) from None
            raise
        except BaseException:
            self._outage.reset()  # an HTTP answer of any kind: the server is there
            self._gate.release()
            raise
        self._outage.reset()
        self._throttling.reset()
        self._gate.release()
        return answers

    async def _nap(self, seconds: float) -> None:
        """Back off between attempts, but not past the run's stop."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._halt.wait(), seconds)

    def _note_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        self.recorder.retried(str(error) or type(error).__name__)


def _planners() -> int:
    """As many planners as the default thread pool has threads (cores + 4): reads in
    flight for a slow network share, without a backlog of decodes in the pool (a few
    planners beat one per slot: docs/performance.md)."""
    return min(32, usable_cores() + 4)


async def _end_after(planners: list[asyncio.Task[None]], ready: asyncio.Queue[object]) -> None:
    """Tell the senders there is no more once every planner has finished."""
    await asyncio.wait(planners)
    await ready.put(_DONE)


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            yield from _leaves(error)
        else:
            yield error
