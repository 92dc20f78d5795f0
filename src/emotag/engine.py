"""One labelling run: stream paths, prepare images in threads, send with bounded
concurrency, retry what is worth retrying, and append each result as it arrives.

Pure of CLI and rendering: progress goes out through `on_event`.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Protocol

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

from emotag import images
from emotag.errors import AnswerError, EmotagError, ImageError, InputError
from emotag.ledger import (
    ERROR_COLUMNS,
    LABEL_COLUMNS,
    NO_FACE,
    Appender,
    Failure,
    Label,
    compact_failures,
    compact_labels,
    no_face_hashes,
    read_labels,
)
from emotag.providers.gemini import Answer, TransientAPIError, transport_errors
from emotag.ratelimit import RateGate

EventKind = Literal["found", "labelled", "failed", "skipped", "duplicate", "retry", "warning"]


class Labeller(Protocol):
    model: str

    async def label(self, image: images.Prepared) -> Answer: ...


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    path: str = ""
    detail: str = ""
    count: int = 1


@dataclass(frozen=True, slots=True)
class TagOptions:
    concurrency: int = 16
    rpm: float | None = None
    timeout: float = 60.0
    max_attempts: int = 6
    max_side: int = images.DEFAULT_MAX_SIDE
    force: bool = False
    skip_multi_face: bool = False


@dataclass
class Summary:
    """What a run did; the CLI renders it, tests assert on it."""

    emotions: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    found: int = 0
    skipped: int = 0
    duplicates: int = 0
    requests: int = 0
    retries: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    elapsed: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def labelled(self) -> int:
        return sum(self.emotions.values())

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


_DONE = object()


class Tagger:
    """Labels images into `labels_csv`, failures into `errors_csv`; resumable."""

    def __init__(
        self,
        labeller: Labeller,
        labels_csv: Path,
        errors_csv: Path,
        options: TagOptions = TagOptions(),
        on_event: Callable[[Event], None] = lambda event: None,
    ) -> None:
        self.labeller = labeller
        self.labels_csv = labels_csv
        self.errors_csv = errors_csv
        self.options = options
        self.on_event = on_event
        self.summary = Summary()
        self._gate = RateGate(options.rpm)
        self._done_paths: set[str] = set()
        self._by_hash: dict[str, Label] = {}
        self._no_face: set[str] = set()  # hashes this model already said show no face
        self._in_flight: dict[str, asyncio.Future[Label | None]] = {}
        self._labelled_now: list[str] = []
        self._on_file: set[str] = set()  # paths with a row before this run (any model)
        self._replaced = False

    async def run(self, source: Callable[[Callable[[Path, str], None]], Iterable[Path]]) -> Summary:
        """Label every path `source` yields; `source` gets a callback for paths it must skip."""
        started = time.monotonic()
        self._load_previous()
        labels = Appender(self.labels_csv, LABEL_COLUMNS)
        errors = Appender(self.errors_csv, ERROR_COLUMNS)
        queue: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()
        loop = asyncio.get_running_loop()
        try:
            feeder = loop.run_in_executor(None, self._feed, source, queue, loop, stop, errors)
            async with asyncio.TaskGroup() as group:
                for _ in range(max(1, self.options.concurrency)):
                    group.create_task(self._worker(queue, labels, errors))
            await feeder
        except BaseExceptionGroup as group_error:
            raise _first_emotag_error(group_error) from None
        finally:
            stop.set()
            labels.close()
            errors.close()
            self.summary.elapsed = time.monotonic() - started
        # Tidying is for a finished run only; an interrupted one is tidied by the next start.
        compact_failures(self.errors_csv, self._labelled_now)
        if self._replaced:
            # --force or another model wrote a second row for a path; keep the newest.
            compact_labels(self.labels_csv, read_labels(self.labels_csv))
        return self.summary

    def _load_previous(self) -> None:
        table = read_labels(self.labels_csv)
        if table.problems:
            shown = "; ".join(table.problems[:3])
            raise InputError(
                f"{len(table.problems)} bad row(s) in the labels CSV ({shown}). Fix or delete "
                "them and run again; emotag will not overwrite rows it cannot read."
            )
        compact_labels(self.labels_csv, table)
        compact_failures(self.errors_csv, table.labels)
        self._on_file = set(table.labels)
        if self.options.force:
            return
        model = self.labeller.model
        self._no_face = no_face_hashes(self.errors_csv, model)
        for label in table.labels.values():
            if label.done_for(model):  # only --force labels a human correction again
                self._done_paths.add(label.path)
                if label.sha256:
                    self._by_hash.setdefault(label.sha256, label)

    def _feed(
        self,
        source: Callable[[Callable[[Path, str], None]], Iterable[Path]],
        queue: asyncio.Queue[object],
        loop: asyncio.AbstractEventLoop,
        stop: threading.Event,
        errors: Appender,
    ) -> None:
        """Runs in a thread so a huge folder listing never blocks sending."""

        def skip(path: Path, reason: str) -> None:
            loop.call_soon_threadsafe(self._fail, errors, str(path), reason)

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
        self.summary.found += len(paths)
        self.on_event(Event("found", str(paths[-1]), count=len(paths)))
        for path in paths:
            queue.put_nowait(path)

    async def _worker(
        self, queue: asyncio.Queue[object], labels: Appender, errors: Appender
    ) -> None:
        while True:
            item = await queue.get()
            if item is _DONE:
                queue.put_nowait(_DONE)  # let the other workers see the end too
                return
            assert isinstance(item, Path)
            await self._process(str(item), labels, errors)

    async def _process(self, path: str, labels: Appender, errors: Appender) -> None:
        if path in self._done_paths:
            self.summary.skipped += 1
            self.on_event(Event("skipped", path))
            return
        try:
            raw = await asyncio.to_thread(Path(path).read_bytes)
        except OSError as exc:
            self._fail(errors, path, f"cannot read file: {exc.strerror or exc}")
            return
        digest = hashlib.sha256(raw).hexdigest()
        original = await self._settled(digest)
        if original is not None:
            self._write(
                labels, replace(original, path=path, duplicate_of=original.path), duplicate=True
            )
            return
        if digest in self._no_face:
            self._fail(errors, path, NO_FACE, digest)  # answered before: not paid again
            return
        future: asyncio.Future[Label | None] = asyncio.get_running_loop().create_future()
        self._in_flight[digest] = future
        label: Label | None = None
        try:
            label = await self._label(path, raw, digest, errors)
            if label is not None:
                self._write(labels, label, duplicate=False)
                self._by_hash[digest] = label
        finally:
            del self._in_flight[digest]
            future.set_result(label)

    async def _settled(self, digest: str) -> Label | None:
        """A label for these exact bytes by this model: already on file, or being fetched now."""
        if digest in self._by_hash:
            return self._by_hash[digest]
        if digest in self._in_flight:
            return await asyncio.shield(self._in_flight[digest])
        return None

    async def _label(self, path: str, raw: bytes, digest: str, errors: Appender) -> Label | None:
        try:
            prepared = await asyncio.to_thread(images.prepare, raw, self.options.max_side)
            answer = await self._send(prepared)
        except ImageError as exc:
            self._fail(errors, path, f"unreadable image: {exc}")
            return None
        except AnswerError as exc:
            self._fail(errors, path, str(exc))
            return None
        except (TransientAPIError, TimeoutError) as exc:
            reason = str(exc) or f"no answer within {self.options.timeout:g}s"
            self._fail(
                errors, path, f"gave up after {self.options.max_attempts} attempts: {reason}"
            )
            return None
        self.summary.input_tokens += answer.input_tokens
        self.summary.output_tokens += answer.output_tokens
        if answer.faces == "0":
            self._fail(errors, path, NO_FACE, digest)
            self._no_face.add(digest)
            return None
        if answer.faces == "2+" and self.options.skip_multi_face:
            self._fail(errors, path, "several faces (--multi-face skip)")
            return None
        return Label(
            path=path,
            emotion=answer.emotion,
            confidence=answer.confidence,
            confidence_source=answer.confidence_source,
            model=self.labeller.model,
            faces=answer.faces,
            sha256=digest,
        )

    async def _send(self, prepared: images.Prepared) -> Answer:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.options.max_attempts),
            retry=retry_if_exception_type((TransientAPIError, TimeoutError)),
            wait=self._backoff,
            before_sleep=self._note_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                await self._gate.wait()
                self.summary.requests += 1
                throttled = False
                try:
                    async with asyncio.timeout(self.options.timeout):
                        return await self.labeller.label(prepared)
                except TransientAPIError as exc:
                    throttled = exc.code == 429
                    if throttled:
                        self._gate.pause(exc.retry_after)
                    raise
                except transport_errors() as exc:
                    raise TransientAPIError(f"network error: {type(exc).__name__}") from exc
                finally:
                    if not throttled:
                        self._gate.release()
        raise AssertionError("unreachable: tenacity reraises the last error")

    @staticmethod
    def _backoff(state: RetryCallState) -> float:
        """Honour the server's RetryInfo delay when it gives one; else exponential with jitter."""
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TransientAPIError) and error.retry_after is not None:
            return error.retry_after * random.uniform(1.0, 1.2)
        return float(wait_exponential_jitter(initial=0.5, max=30.0, jitter=0.5)(state))

    def _note_retry(self, state: RetryCallState) -> None:
        self.summary.retries += 1
        error = state.outcome.exception() if state.outcome else None
        self.on_event(Event("retry", detail=str(error) or type(error).__name__))

    def _write(self, labels: Appender, label: Label, *, duplicate: bool) -> None:
        labels.append(label.as_row())
        self._replaced = self._replaced or label.path in self._on_file
        self._done_paths.add(label.path)
        self._labelled_now.append(label.path)
        self.summary.emotions[label.emotion] += 1
        if duplicate:
            self.summary.duplicates += 1
        self.on_event(Event("duplicate" if duplicate else "labelled", label.path, label.emotion))

    def _fail(self, errors: Appender, path: str, reason: str, digest: str = "") -> None:
        errors.append(Failure(path, reason, self.labeller.model, digest).as_row())
        self.summary.failures[reason.split(":", 1)[0]] += 1
        self.on_event(Event("failed", path, reason))


def _first_emotag_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """Surface the error that stopped the run (a bad key, a full disk) instead of a group."""
    for error in _leaves(group):
        if isinstance(error, EmotagError):
            return error
    return next(_leaves(group))


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            yield from _leaves(error)
        else:
            yield error
