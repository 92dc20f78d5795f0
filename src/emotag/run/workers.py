"""Send a run's requests from worker processes, past one thread's worth of SDK CPU.

At `--concurrency 256` the one event-loop thread was the limit, much of its CPU the SDK's
HTTP stack (docs/performance.md). `WorkerPool` is a `Provider` whose requests are
sent by a few worker processes, each with its own client built from the same `Setup`.
The parent keeps all that makes a run safe: the lock, the rows, the rate gate, the
retries and the stops. A worker only sends what it is given and says what came back.

Which optional settings the model accepts stays one parent's knowledge: each request
carries the settings in use, and what a worker's provider learns (a refusal, an accepted
setting, a reported model name) is replayed on the parent's `Negotiator`, which counts,
warns and remembers as in a run without workers.

The workers are `python -m emotag.run.workers`, talking length-prefixed pickles over stdin
and stdout (the same on Windows, where there is no fork). A worker whose stdin closes
exits, so a parent killed by kill -9 or a crash leaves none behind.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import itertools
import os
import pickle
import signal
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

import emotag
from emotag.errors import RunStalled
from emotag.files.settings import IN_FLIGHT_PER_WORKER, usable_cores
from emotag.providers import Provider, Setup, ignore_warning, spec
from emotag.providers.negotiation import Negotiator

if TYPE_CHECKING:
    from emotag.files.images import Prepared
    from emotag.providers.answers import Answer

_HEADER: Final = struct.Struct("<I")
# What a worker's provider may learn about the settings, replayed on the parent's.
_LEARNED: Final = frozenset({"refuse", "accept", "note_reported"})


def automatic(concurrency: int, cores: int | None = None) -> int:
    """Worker processes for `concurrency` requests in flight: none up to
    `IN_FLIGHT_PER_WORKER`, else one per that many, leaving a core to the parent."""
    if concurrency <= IN_FLIGHT_PER_WORKER:
        return 0
    spare = max(1, (cores or usable_cores()) - 1)
    return min(spare, -(-concurrency // IN_FLIGHT_PER_WORKER))


def _frame(message: object) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data)) + data


class WorkerLost(RunStalled):
    """A worker process ended mid-run: the run stops with what it has saved."""


class _Worker:
    """The parent's handle on one worker process."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.waiting: dict[int, asyncio.Future[list[Answer]]] = {}
        self.up = asyncio.Event()  # it has built its provider, or failed to
        self.failed: BaseException | None = None  # why it cannot answer (it ended, or never built)
        self.sent = 0
        self.reading: asyncio.Task[None] | None = None

    def send(self, message: object) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(_frame(message))

    def fail(self, error: BaseException) -> None:
        """It cannot answer: everything waiting on it fails with `error`."""
        self.failed = self.failed or error
        self.up.set()
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(self.failed)
        self.waiting.clear()


async def spawn(workers: int, name: str, setup: Setup) -> list[asyncio.subprocess.Process]:
    """Start `workers` worker processes and give each its setup at once, so they import
    and build their `name` providers while this process builds its own. One that cannot
    be started (no interpreter to run) is reported to `setup.on_warning`, and the run
    sends with those that could."""
    first = _frame((name, dataclasses.replace(setup, on_warning=ignore_warning), sys.path))
    started: list[asyncio.subprocess.Process] = []
    for _ in range(workers):
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "emotag.run.workers",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=_child_environment(),
            )
        except OSError as exc:
            setup.on_warning(_cannot_start(str(exc), "the others" if started else "this process"))
            break
        assert process.stdin is not None
        process.stdin.write(first)
        started.append(process)
    return started


class WorkerPool:
    """A `Provider` whose requests go out from worker processes (from `spawn`); `local`,
    the same provider built here, gives the names and the settings the run reads, and
    sends while no worker has started. `warn` says a worker could not start."""

    def __init__(
        self,
        local: Provider,
        processes: list[asyncio.subprocess.Process],
        warn: Callable[[str], None] = ignore_warning,
    ) -> None:
        self.local = local
        self.service = local.service
        self.reports_model = local.reports_model
        self.model = local.model
        self.endpoint = local.endpoint
        self.settings: Negotiator = local.settings
        self._ids = itertools.count(1)
        self._warn = warn
        self._all = [_Worker(process) for process in processes]
        self._running = list(self._all)  # less any that could not start
        for worker in self._all:
            worker.reading = asyncio.create_task(self._read(worker))

    async def label(self, image: Prepared, n: int = 1) -> list[Answer]:
        """Sent by the least busy worker; by this process's own provider while none has
        started yet, so a run's first requests do not wait for the workers' imports."""
        started = [worker for worker in self._running if worker.up.is_set()]
        if not started:
            return await self.local.label(image, n)
        worker = min(started, key=_load)
        if worker.failed is not None:
            raise worker.failed
        ident = next(self._ids)
        future: asyncio.Future[list[Answer]] = asyncio.get_running_loop().create_future()
        worker.waiting[ident] = future
        worker.sent += 1
        worker.send(("label", ident, image, n, frozenset(self.settings.active)))
        try:
            return await future
        except asyncio.CancelledError:
            if worker.waiting.pop(ident, None) is not None and worker.failed is None:
                worker.send(("cancel", ident))  # given up on here (a timeout, a stop)
            raise

    async def started(self) -> None:
        """Until every worker has built its provider (or failed to)."""
        await asyncio.gather(*(worker.up.wait() for worker in self._all))

    @property
    def sent(self) -> int:
        """Requests the workers were given (the rest went out from `local`)."""
        return sum(worker.sent for worker in self._all)

    async def aclose(self) -> None:
        """Close the workers' stdin (each cancels what it still sends and exits), then
        wait for them."""
        for worker in self._all:
            if worker.process.stdin is not None and not worker.process.stdin.is_closing():
                worker.process.stdin.close()
        for worker in self._all:
            try:
                await asyncio.wait_for(worker.process.wait(), 5.0)
            except TimeoutError:
                worker.process.kill()
                await worker.process.wait()
            if worker.reading is not None:
                await worker.reading
        await self.local.aclose()

    async def _read(self, worker: _Worker) -> None:
        stream = worker.process.stdout
        assert stream is not None
        try:
            while True:
                header = await stream.readexactly(_HEADER.size)
                body = await stream.readexactly(_HEADER.unpack(header)[0])
                self._arrived(worker, *pickle.loads(body))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        code = await worker.process.wait()
        if not worker.up.is_set():
            self._not_started(worker, f"it ended with exit code {code}")
        worker.fail(
            WorkerLost(
                f"A worker process of this run ended (exit code {code})",
                then="Run the same command again; nothing was lost",
            )
        )

    def _arrived(self, worker: _Worker, ident: int, outcome: Any, learned: list[Any]) -> None:
        for method, *args in learned:
            if method in _LEARNED:
                getattr(self.settings, method)(*args)
        if ident == 0:  # the worker's first word: built, or why not
            if isinstance(outcome, BaseException):
                self._not_started(worker, str(outcome) or type(outcome).__name__)
            worker.up.set()
            return
        future = worker.waiting.pop(ident, None)
        if future is None or future.done():
            return  # given up on: what came back is dropped
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)

    def _not_started(self, worker: _Worker, why: str) -> None:
        """A worker that never built its provider (a frozen build with no `python -m`)
        takes no requests; the run goes on without it, from this process if need be."""
        self._running.remove(worker)
        worker.up.set()
        self._warn(_cannot_start(why, "the others" if self._running else "this process"))


def _cannot_start(why: str, left: str) -> str:
    return f"a worker process could not start ({why}); sending from {left} instead"


def _load(worker: _Worker) -> tuple[bool, int]:
    """Working workers first, then the least busy."""
    return worker.failed is not None, len(worker.waiting)


def _child_environment() -> dict[str, str]:
    """This environment, with the folder emotag is imported from first on the path (a
    checkout run without installing)."""
    root = str(Path(emotag.__file__).resolve().parents[1])
    paths = [root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


class _Relay(Negotiator):
    """A worker's settings: those the parent sends with each request, and a log of what
    the provider learns, for the parent to replay (nothing is remembered here)."""

    def __init__(self, like: Negotiator) -> None:  # a copy of `like`'s state, not a new one
        self.__dict__.update(like.__dict__)
        self.learned: list[tuple[str, ...]] = []
        self._refused_here: set[str] = set()

    def use(self, active: frozenset[str]) -> None:
        self.active = set(active) - self._refused_here

    def refuse(self, name: str) -> None:
        self.active.discard(name)
        self._refused_here.add(name)
        self.learned.append(("refuse", name))

    def accept(self) -> None:
        if ("accept",) not in self.learned:
            self.learned.append(("accept",))

    def note_reported(self, name: str) -> None:
        """Sent on once per name, not with every answer (the run keeps them)."""
        if name and name != self.model and name not in self._reported:
            self._reported.add(name)
            self.learned.append(("note_reported", name))

    def drain(self) -> list[tuple[str, ...]]:
        learned, self.learned = self.learned, []
        return learned


class _Serving:
    """The worker's side: its provider, the requests in flight, and replies to write."""

    def __init__(self, provider: Provider, out: IO[bytes]) -> None:
        self.provider = provider
        self.relay = _Relay(provider.settings)
        provider.settings = self.relay
        self.out = out
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.replies: list[bytes] = []
        self.ended = asyncio.Event()

    def arrived(self, message: tuple[Any, ...]) -> None:
        kind, ident, *request = message
        if kind == "label":
            self.tasks[ident] = asyncio.create_task(self._answer(ident, *request))
        elif (task := self.tasks.pop(ident, None)) is not None:
            task.cancel()

    async def _answer(self, ident: int, image: Prepared, n: int, active: frozenset[str]) -> None:
        self.relay.use(active)
        outcome: Any
        try:
            outcome = await self.provider.label(image, n)
        except Exception as exc:  # noqa: BLE001 - any failure is the parent's to judge
            outcome = _portable(exc)
        self.tasks.pop(ident, None)
        self.reply(ident, outcome)

    def reply(self, ident: int, outcome: Any) -> None:
        if not self.replies:
            asyncio.get_running_loop().call_soon(self._flush)  # one write per loop turn
        self.replies.append(_frame((ident, outcome, self.relay.drain())))

    def _flush(self) -> None:
        data, self.replies = b"".join(self.replies), []
        try:
            self.out.write(data)
            self.out.flush()
        except OSError:
            self.ended.set()  # the parent has gone


def _portable(exc: Exception) -> Exception:
    """The error itself if it survives pickling (emotag's do), else its words."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - a plugin's error type may not pickle
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


def _frames(fd: int) -> Iterator[list[Any]]:
    """The messages on `fd`, as many as each read completes, until it closes. Plain
    `os.read`, not a buffered file, whose lock a daemon thread would hold at exit."""
    pending = bytearray()
    while chunk := os.read(fd, 1 << 16):
        pending += chunk
        messages = []
        while len(pending) >= _HEADER.size:
            size = _HEADER.unpack_from(pending)[0]
            if len(pending) < _HEADER.size + size:
                break
            messages.append(pickle.loads(pending[_HEADER.size : _HEADER.size + size]))
            del pending[: _HEADER.size + size]
        if messages:
            yield messages


async def _serve(fd: int, out: IO[bytes]) -> None:
    frames = _frames(fd)
    first = next(frames, None)
    if first is None:
        return  # the run ended before it gave this worker its setup
    (name, setup, path), *early = first  # nothing is sent before the worker's first word
    sys.path[:] = path
    try:
        provider = spec(name).build(setup)
    except Exception as exc:  # noqa: BLE001 - the parent reports why
        out.write(_frame((0, _portable(exc), [])))
        out.flush()
        return
    gc.freeze()  # the SDK's objects live as long as the worker: keep them out of scans
    serving = _Serving(provider, out)
    serving.reply(0, None)
    loop = asyncio.get_running_loop()

    def arrive(messages: list[Any]) -> None:
        for message in messages:
            serving.arrived(message)

    def read() -> None:
        """Blocking reads in a thread: a pipe cannot be awaited on every platform."""
        with suppress(RuntimeError):  # the loop may have closed first
            try:
                for messages in frames:
                    loop.call_soon_threadsafe(arrive, messages)
            finally:
                loop.call_soon_threadsafe(serving.ended.set)  # stdin closed: the run is over

    arrive(early)
    threading.Thread(target=read, daemon=True).start()
    await serving.ended.wait()
    for task in list(serving.tasks.values()):
        task.cancel()
    await provider.aclose()


def main() -> None:
    """A worker process: Ctrl-C is the parent's to handle; anything printed goes to
    stderr, so stdout carries only replies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    asyncio.run(_serve(sys.stdin.fileno(), out))


if __name__ == "__main__":
    main()
