"""Worker processes (`--workers`): real processes, real pipes and real HTTP to the fake.

The pool's own tests wait for the workers before sending, so every request is known to
go out from one; the CLI's tests kill a worker, the run, and Ctrl-C the process group,
and check that nothing is lost, nothing is paid twice and no process is left behind.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import pickle
import signal
import sys
import time
from asyncio.subprocess import PIPE
from collections.abc import Callable
from pathlib import Path

import pytest

from emotag.errors import (
    AnswerError,
    ConfigError,
    EmotagError,
    FatalAPIError,
    NetworkError,
    QuotaSpent,
    RunStalled,
    Throttled,
    TransientAPIError,
)
from emotag.files import images
from emotag.providers import Setup, spec
from emotag.providers.negotiation import SettingsMemory
from emotag.run import workers
from emotag.run.options import TagOptions
from fakes.colours import EMOTION_COLOURS
from fakes.gemini_api import TEST_KEY, FakeGemini, Reply
from fakes.openai_api import OPENAI_TEST_KEY, FakeOpenAI
from helpers import make_image, read_csv, start_cli
from test_real_api import folder

LABELS = Path("dataset/llm_labels.csv")
linux_only = pytest.mark.skipif(
    not Path("/proc/self/task").exists(), reason="finds a run's workers through /proc"
)


def _setup(fake: FakeGemini) -> Setup:
    return Setup(
        model="gemini-2.5-flash",
        key=TEST_KEY,
        base_url=fake.url,
        endpoint=spec("gemini").endpoint(fake.url),
    )


def _image(tmp_path: Path, i: int) -> tuple[images.Prepared, str]:
    emotion = EMOTION_COLOURS[i % 7]
    path = make_image(tmp_path / f"{i}.png", emotion, size=(30 + i % 50, 30 + i // 50))
    return images.prepare(path.read_bytes()), emotion


async def _pool(fake: FakeGemini, count: int) -> workers.WorkerPool:
    setup = _setup(fake)
    pool = workers.WorkerPool(
        spec("gemini").build(setup), await workers.spawn(count, "gemini", setup)
    )
    await pool.started()
    return pool


def test_workers_send_and_the_parent_keeps_what_they_learn(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    gemini.logprobs = "reject"  # as AI Studio keys answer on current models
    gemini.latency = 0.2
    pictures = [_image(tmp_path, i) for i in range(200)]

    async def run() -> tuple[workers.WorkerPool, list[list[str]], list[int | None]]:
        pool = await _pool(gemini, 2)
        try:
            assert not pool.settings.settled
            first = await pool.label(pictures[0][0])  # alone, as the engine probes
            assert pool.settings.settled and "logprobs" in pool.settings.refused
            rest = await asyncio.gather(*(pool.label(image) for image, _ in pictures[1:]))
            answers = [first, *rest]
        finally:
            await pool.aclose()
        codes = [worker.process.returncode for worker in pool._running]
        return pool, [[a.emotion for a in got] for got in answers], codes

    pool, answers, codes = asyncio.run(run())
    assert answers == [[emotion] for _, emotion in pictures]
    assert pool.sent == 200 and gemini.count == 201  # one refusal, then none
    assert pool.settings.refusals == 1
    # The parent remembered it, for the next run: no worker writes the user's cache.
    accepted, refused = SettingsMemory().recall(pool.endpoint, pool.model)
    assert "logprobs" in refused and "thinking" in accepted
    low, high = sorted(worker.sent for worker in pool._running)
    assert high - low <= 2  # each request to the least busy
    assert codes == [0, 0]  # stdin closed: each finished and exited


@pytest.mark.parametrize(
    ("reply", "kind", "words"),
    [
        (Reply.daily_quota("gemini-2.5-flash"), QuotaSpent, "daily request quota"),
        (Reply.error(429, "RESOURCE_EXHAUSTED", "Quota exceeded", "7s"), Throttled, "429"),
        (Reply.error(503, "UNAVAILABLE", "overloaded"), TransientAPIError, "503"),
        (Reply.error(400, "FAILED_PRECONDITION", "User location"), FatalAPIError, "location"),
        (Reply.blocked_prompt("SAFETY"), AnswerError, "blocked"),
    ],
)
def test_errors_cross_from_a_worker_as_themselves(
    gemini: FakeGemini, tmp_path: Path, reply: Reply, kind: type[Exception], words: str
) -> None:
    image, _ = _image(tmp_path, 0)
    gemini.queue.append(reply)

    async def run() -> BaseException:
        pool = await _pool(gemini, 1)
        try:
            with pytest.raises(kind) as caught:
                await pool.label(image)
            return caught.value
        finally:
            await pool.aclose()

    error = asyncio.run(run())
    assert type(error) is kind and words in str(error)
    if isinstance(error, Throttled):
        assert error.retry_after == 7.0  # the server's RetryInfo survives the pipe


@pytest.mark.parametrize(
    "error",
    [
        QuotaSpent("spent", saved=3),
        RunStalled("stalled", then="Run it again"),
        Throttled("429", retry_after=2.5, code=429),
        NetworkError("reset"),
        AnswerError("off the list"),
        ConfigError("bad"),
    ],
)
def test_every_error_pickles_with_its_fields(error: EmotagError) -> None:
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error) and str(back) == str(error)
    assert vars(back) == vars(error)


def test_an_error_that_cannot_pickle_crosses_as_its_words() -> None:
    class Odd(Exception):
        def __init__(self, a: int, b: int) -> None:
            super().__init__(f"{a}/{b}")

    crossed = workers._portable(Odd(1, 2))
    assert isinstance(crossed, RuntimeError) and str(crossed) == "Odd: 1/2"


def test_a_request_given_up_on_is_cancelled_in_the_worker(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    image, emotion = _image(tmp_path, 3)

    async def run() -> list[str]:
        pool = await _pool(gemini, 1)
        try:
            gemini.hold.clear()  # no answer comes
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.5):
                    await pool.label(image)
            await _until(lambda: gemini.abandoned == 1)  # the worker hung up on it
            gemini.hold.set()
            return [answer.emotion for answer in await pool.label(image)]
        finally:
            gemini.hold.set()
            await pool.aclose()

    assert asyncio.run(run()) == [emotion]


async def _until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_workers_are_chosen_from_the_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    assert workers.automatic(16, cores=2) == 0  # one process keeps up: no workers
    assert workers.automatic(128, cores=16) == 0  # measured: no gain at 128 on 2 cores
    assert workers.automatic(129, cores=2) == 1
    assert workers.automatic(256, cores=2) == 1  # a core left to this process
    assert workers.automatic(256, cores=16) == 2
    assert workers.automatic(1024, cores=16) == 8
    assert workers.automatic(4096, cores=4) == 3
    assert workers.automatic(256, cores=1) == 1
    resolved = TagOptions(folder=Path(), concurrency=256).resolved()
    assert resolved.workers == workers.automatic(256)
    assert TagOptions(folder=Path(), concurrency=2, workers=5).resolved().workers == 2
    monkeypatch.setenv("EMOTAG_WORKERS", "0")
    assert TagOptions(folder=Path(), concurrency=256).resolved().workers == 0
    monkeypatch.setenv("EMOTAG_WORKERS", "-1")
    with pytest.raises(ConfigError, match="must be 0 or more"):
        TagOptions(folder=Path(), concurrency=256).resolved()


def _workers_of(pid: int) -> list[int]:
    """The run's worker processes (its children), from /proc."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(child) for child in task.read_text().split()]
    return found


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")  # a zombie has exited; only its parent's wait is left


def _wait(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.slow
@linux_only
def test_a_worker_that_dies_stops_the_run_with_every_label_kept(
    fake: FakeGemini, tmp_path: Path
) -> None:
    truth = folder(tmp_path / "in", 900)
    fake.latency = 1.5  # the worker is up before the first answers come back
    run = start_cli(fake, tmp_path, "tag", "in", "-c", "256", "--workers", "1", "--json")
    _wait(lambda: len(_workers_of(run.pid)) == 1)
    _wait(lambda: fake.count >= 400)  # past the first wave: the worker has requests out
    (worker,) = _workers_of(run.pid)
    os.kill(worker, signal.SIGKILL)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 2 and "A worker process of this run ended" in err
    kept = read_csv(tmp_path / LABELS)
    assert f"{len(kept)} label(s) saved" in err and "Run the same command again" in err
    assert not (tmp_path / "dataset/llm_errors.csv").exists()  # no image blamed
    fake.latency = 0.05
    again = start_cli(fake, tmp_path, "tag", "in", "-c", "256")
    again.communicate(timeout=60)
    assert again.returncode == 0
    assert {row["path"]: row["emotion"] for row in read_csv(tmp_path / LABELS)} == truth
    # Paid twice at most: what the killed worker had in flight.
    assert len(fake.labelling_requests()) - len(truth) <= 256


@pytest.mark.slow
@linux_only
def test_a_killed_run_leaves_no_worker_behind(fake: FakeGemini, tmp_path: Path) -> None:
    folder(tmp_path / "in", 300)
    fake.hold.clear()  # every request waits: the run is mid-flight when it is killed
    run = start_cli(fake, tmp_path, "tag", "in", "-c", "256", "--workers", "2")
    try:
        _wait(lambda: len(_workers_of(run.pid)) == 2 and fake.in_flight > 0)
        left = _workers_of(run.pid)
        # Started: a worker reads its stdin in a second thread once its provider is built
        # and its first word written, so from now on only stdin closing can end it.
        _wait(lambda: all(len(list(Path(f"/proc/{pid}/task").iterdir())) >= 2 for pid in left))
        time.sleep(0.5)
        run.kill()
        run.communicate(timeout=30)
        _wait(lambda: all(_gone(pid) for pid in left), seconds=10)  # stdin closed: exit
    finally:
        fake.hold.set()


@pytest.mark.slow
@linux_only
def test_ctrl_c_on_the_process_group_stops_the_run_and_its_workers(
    fake: FakeGemini, tmp_path: Path
) -> None:
    folder(tmp_path / "in", 600)
    fake.latency = 1.0
    run = start_cli(
        fake, tmp_path, "tag", "in", "-c", "256", "--workers", "1", start_new_session=True
    )
    try:
        _wait(lambda: len(_workers_of(run.pid)) == 1 and fake.count >= 300)
        left = _workers_of(run.pid)
        os.killpg(run.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole group
        _, err = run.communicate(timeout=30)
    finally:
        fake.hold.set()
    assert run.returncode == 130 and "run the same command again" in err
    assert all(_gone(pid) for pid in left)
    kept = read_csv(tmp_path / LABELS)
    assert 0 < len(kept) < 600


def test_a_worker_that_cannot_start_leaves_the_sending_to_this_process(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    image, emotion = _image(tmp_path, 5)
    warnings: list[str] = []
    setup = dataclasses.replace(_setup(gemini), on_warning=warnings.append)

    async def run() -> tuple[list[str], int]:
        # What a frozen build gives instead of a worker: a process that exits at once.
        broken = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "raise SystemExit(3)", stdin=PIPE, stdout=PIPE
        )
        pool = workers.WorkerPool(spec("gemini").build(setup), [broken], warnings.append)
        try:
            await pool.started()
            answers = await asyncio.gather(*(pool.label(image) for _ in range(3)))
            return [a.emotion for got in answers for a in got], pool.sent
        finally:
            await pool.aclose()

    assert asyncio.run(run()) == ([emotion] * 3, 0)
    assert warnings == [
        "a worker process could not start (it ended with exit code 3); "
        "sending from this process instead"
    ]


def test_an_openai_compatible_server_through_workers(server: FakeOpenAI, tmp_path: Path) -> None:
    """The pool names no provider: OpenAI's refusals and reported model names reach the
    parent from a worker just as Gemini's do."""
    server.logprobs = False  # a server without them answers 400 to the field
    server.unsupported = {"logprobs"}
    server.reported_model = "qwen2.5vl:7b-q4_K_M"
    pictures = [_image(tmp_path, i) for i in range(40)]
    chosen = spec("openai")
    setup = Setup(
        model="qwen2.5vl:7b",
        key=OPENAI_TEST_KEY,
        base_url=server.url,
        endpoint=chosen.endpoint(server.url),
    )

    async def run() -> tuple[workers.WorkerPool, list[str]]:
        pool = workers.WorkerPool(chosen.build(setup), await workers.spawn(1, "openai", setup))
        try:
            await pool.started()
            first = await pool.label(pictures[0][0])
            rest = await asyncio.gather(*(pool.label(image) for image, _ in pictures[1:]))
        finally:
            await pool.aclose()
        return pool, [got[0].emotion for got in [first, *rest]]

    pool, answers = asyncio.run(run())
    assert answers == [emotion for _, emotion in pictures] and pool.sent == 40
    assert pool.settings.refusals == 1 and "logprobs" in pool.settings.refused
    memory = SettingsMemory()
    assert "logprobs" in memory.recall(pool.endpoint, pool.model)[1]
    assert memory.reported(pool.endpoint, pool.model) == {"qwen2.5vl:7b-q4_K_M"}


def test_no_interpreter_to_start_a_worker_is_said_once_and_the_run_goes_on(
    gemini: FakeGemini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    warnings: list[str] = []
    setup = dataclasses.replace(_setup(gemini), on_warning=warnings.append)
    assert asyncio.run(workers.spawn(2, "gemini", setup)) == []
    assert len(warnings) == 1 and warnings[0].startswith("a worker process could not start (")
    assert warnings[0].endswith("); sending from this process instead")
