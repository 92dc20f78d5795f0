from __future__ import annotations

import asyncio

import pytest

from emotag.run import pacing
from emotag.run.pacing import RateGate

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
