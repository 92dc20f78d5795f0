"""Pacing: the rate gate every sender shares, the back-off between attempts, and the
stalls that end a run, each rule on its own clock."""

from __future__ import annotations

import asyncio

import pytest
from tenacity import Future, RetryCallState

from emotag.errors import NetworkError, Throttled, TransientAPIError
from emotag.run import pacing
from emotag.run.pacing import RateGate, Stall, backoff

_real_sleep = asyncio.sleep


class Clock:
    """Virtual time: asyncio.sleep advances it instead of waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sends: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await _real_sleep(0)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(pacing.time, "monotonic", c.monotonic)
    monkeypatch.setattr(pacing.asyncio, "sleep", c.sleep)
    return c


def test_gate_spaces_sends_evenly_at_the_rpm(clock: Clock) -> None:
    gate = RateGate(rpm=600)

    async def send() -> None:
        await gate.wait()
        clock.sends.append(clock.now)

    async def many() -> None:
        for _ in range(50):
            await send()

    asyncio.run(many())
    gaps = [b - a for a, b in zip(clock.sends, clock.sends[1:], strict=False)]
    assert min(gaps) == pytest.approx(0.1)
    assert clock.sends[-1] - clock.sends[0] == pytest.approx(4.9)


def test_gate_pause_holds_everyone_back(clock: Clock) -> None:
    gate = RateGate()
    assert gate.pause(5.0) == 5.0
    start = clock.now
    asyncio.run(gate.wait())
    assert clock.now - start == pytest.approx(5.0)


def test_gate_backs_off_exponentially_without_a_server_delay(clock: Clock) -> None:
    gate = RateGate()
    assert [gate.pause(None) for _ in range(3)] == [1.0, 2.0, 4.0]
    gate.release()
    assert gate.pause(None) == 1.0


def test_gate_lets_one_probe_through_after_a_pause(clock: Clock) -> None:
    gate = RateGate()
    gate.pause(2.0)
    order: list[str] = []

    async def worker(name: str) -> None:
        await gate.wait()
        order.append(f"{name}@{clock.now - 1000:.0f}")

    async def scenario() -> None:
        tasks = [asyncio.create_task(worker(n)) for n in "abc"]
        for _ in range(5):
            await asyncio.sleep(0)  # virtual: lets the tasks run
        assert order == ["a@2"]  # only the probe went; b and c wait for it
        gate.release()
        await asyncio.gather(*tasks)

    asyncio.run(scenario())
    assert order == ["a@2", "b@2", "c@2"]


def after(attempt: int, error: BaseException) -> RetryCallState:
    """tenacity's state after `attempt` attempts, the last one failing with `error`."""
    state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]
    state.attempt_number = attempt
    state.outcome = Future.construct(attempt, error, True)
    return state


def test_a_429_waits_in_the_gate_not_in_the_back_off() -> None:
    assert {backoff(after(n, Throttled("429", retry_after=9.0))) for n in (1, 5)} == {0.0}


def test_a_server_delay_is_honoured_with_a_little_jitter_on_top() -> None:
    waits = [backoff(after(1, TransientAPIError("503", retry_after=2.0))) for _ in range(200)]
    assert 2.0 <= min(waits) < max(waits) <= 2.4


@pytest.mark.parametrize(
    ("error", "cap"),
    [(TransientAPIError("500"), 30.0), (NetworkError("reset"), 5.0)],
    ids=["5xx", "network"],
)
def test_without_a_server_delay_the_wait_doubles_up_to_its_cap(
    error: BaseException, cap: float
) -> None:
    """0.5 s, 1 s, 2 s … plus up to 0.5 s of jitter; an unreachable server is tried again
    sooner (its outage has its own clock: `Stall`)."""
    for attempt, base in ((1, 0.5), (2, 1.0), (3, 2.0)):
        assert base <= backoff(after(attempt, error)) <= base + 0.5
    assert backoff(after(12, error)) == cap


def test_a_stall_ends_the_run_only_after_its_limit_without_a_success(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    monkeypatch.setattr(pacing.time, "monotonic", lambda: now[0])
    stall = Stall(30.0)
    assert not stall.failed("refused")
    now[0] += 29.9
    assert not stall.failed("reset")
    now[0] += 0.1
    assert stall.failed("timed out") and stall.last == "timed out"
    stall.reset()  # an answer came: the next failure starts a new stretch
    assert not stall.failed("refused")
    now[0] += 29.9
    assert not stall.failed("refused")


def test_a_later_shorter_pause_does_not_cut_a_longer_one(clock: Clock) -> None:
    gate = RateGate()
    gate.pause(5.0)
    gate.pause(1.0)
    start = clock.now
    asyncio.run(gate.wait())
    assert clock.now - start == pytest.approx(5.0)


def test_without_an_rpm_nothing_is_spaced(clock: Clock) -> None:
    gate = RateGate()

    async def many() -> None:
        for _ in range(10):
            await gate.wait()

    start = clock.now
    asyncio.run(many())
    assert clock.now == start


def test_a_stopping_run_waits_for_nothing(clock: Clock) -> None:
    """Set `halt`: a paused gate lets every waiter go at once, the probe's followers too."""

    async def scenario() -> list[str]:
        halt = asyncio.Event()
        gate = RateGate(rpm=1, halt=halt)
        gate.pause(60.0)
        done: list[str] = []

        async def worker(name: str) -> None:
            await gate.wait()
            done.append(name)

        tasks = [asyncio.create_task(worker(name)) for name in "abc"]
        for _ in range(5):
            await _real_sleep(0)
        assert done == []  # the probe waits out the pause, the others wait for the probe
        halt.set()
        gate.open_all()
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        return done

    assert sorted(asyncio.run(scenario())) == ["a", "b", "c"]


def test_a_release_without_a_pause_changes_nothing_but_the_strikes(clock: Clock) -> None:
    gate = RateGate()
    gate.pause(None)
    gate.release()
    gate.release()
    assert gate.strikes == 0
    assert gate.pause(None) == 1.0  # the exponential back-off starts again
