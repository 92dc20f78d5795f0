"""Every run-level guarantee at --concurrency 256, the setting a large paid quota wants:
resume pays nothing twice, a spent daily quota and a fatal refusal stop with every label
kept, a throttled run and an outage stop with none blamed, --rpm holds, --votes tallies,
and the lock refuses a second run. (The same guarantees at the default 16 are in
test_real_api.py and test_reliability.py.)"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from typer.testing import CliRunner

from emotag.cli import app
from fakes.gemini_api import TEST_KEY, FakeGemini, Reply
from test_real_api import blamed, folder, labels, tag

if TYPE_CHECKING:
    from emotag.providers.answers import Answer

C256 = ("--concurrency", "256")


def test_all_labelled_and_a_rerun_pays_nothing(gemini: FakeGemini, tmp_path: Path) -> None:
    truth = folder(tmp_path / "in", 1000)
    gemini.latency = 1.0  # answers take a while: the requests pile up in flight
    code, summary, _ = tag(str(tmp_path / "in"), *C256)
    assert code == 0 and labels() == truth and summary["requests"] == gemini.count == 1000
    assert gemini.max_in_flight > 100  # the pool no longer caps it at the SDK's 100
    # At 256 in flight a worker process sends, once started (the first wave goes out
    # from this one meanwhile).
    assert 0 < summary["sent_by_workers"] < 1000
    again, summary, _ = tag(str(tmp_path / "in"), *C256)
    assert again == 0 and summary["requests"] == 0 and gemini.count == 1000


def test_a_spent_daily_quota_keeps_every_answer_and_the_rerun_pays_only_the_rest(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    truth = folder(tmp_path / "in", 500)
    gemini.daily_quota_after = 300
    code, _, err = tag(str(tmp_path / "in"), *C256)
    assert code == 2 and "daily request quota" in err and "300 label(s) saved" in err
    assert len(labels()) == 300 and blamed() == []
    gemini.daily_quota_after = None
    paid = gemini.answered
    code, summary, _ = tag(str(tmp_path / "in"), *C256)
    assert code == 0 and labels() == truth
    assert gemini.answered - paid == summary["answers"] == 200  # nothing paid twice


def test_a_fatal_refusal_stops_within_one_wave_and_keeps_the_labels(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    folder(tmp_path / "warm", 2)
    assert tag(str(tmp_path / "warm"))[0] == 0  # settings remembered: requests fan out
    folder(tmp_path / "in", 800, offset=10)
    region = "User location is not supported for the API use."
    gemini.queue.extend([Reply()] * 100 + [Reply.error(400, "FAILED_PRECONDITION", region)] * 2000)
    before = gemini.count
    code, _, err = tag(str(tmp_path / "in"), *C256)
    assert code == 2 and region.rstrip(".") in err and blamed() == []
    saved = len(labels()) - 2
    assert saved == 100 and f"{saved} label(s) saved" in err
    assert gemini.count - before <= 100 + 256  # the requests in flight, then nothing


def test_endless_throttling_stops_at_max_wait_and_blames_none(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    folder(tmp_path / "in", 400)
    throttled = Reply.error(429, "RESOURCE_EXHAUSTED", "Quota exceeded", "0.2s")
    gemini.queue.extend([Reply()] * 50 + [throttled] * 5000)
    code, _, err = tag(str(tmp_path / "in"), *C256, "--max-wait", "2")
    assert code == 2 and "Throttled (429)" in err and "50 label(s) saved" in err
    assert len(labels()) == 50 and blamed() == []


def test_an_outage_stops_the_run_with_nothing_blamed(
    gemini: FakeGemini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import emotag.run.engine

    truth = folder(tmp_path / "in", 300)
    monkeypatch.setattr(emotag.run.engine, "OUTAGE_AFTER", 2.0)  # the real wait is 30 s
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", "http://127.0.0.1:9")  # nothing listens
    code, _, err = tag(str(tmp_path / "in"), *C256)
    assert code == 2 and "Cannot reach the Gemini API" in err and blamed() == []
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", gemini.url)
    code, _, _ = tag(str(tmp_path / "in"), *C256)
    assert code == 0 and labels() == truth and gemini.count == 300


def test_the_rate_gate_holds_at_256_in_flight(gemini: FakeGemini, tmp_path: Path) -> None:
    folder(tmp_path / "in", 40)
    started = time.monotonic()
    code, _, _ = tag(str(tmp_path / "in"), *C256, "--rpm", "600")  # 10 a second at most
    assert code == 0 and len(labels()) == 40
    times = sorted(s.time for s in gemini.labelling_requests())
    # 40 requests spaced 0.1 s apart take about 3.9 s, however many may be in flight.
    assert times[-1] - times[0] >= 3.5 and time.monotonic() - started >= 3.5


def test_votes_at_256_tally_every_image(gemini: FakeGemini, tmp_path: Path) -> None:
    truth = folder(tmp_path / "in", 120)
    code, summary, _ = tag(str(tmp_path / "in"), *C256, "--votes", "3")
    assert code == 0 and labels() == truth and summary["answers"] == 360


def test_a_second_run_is_refused_while_the_first_holds_the_lock(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    folder(tmp_path / "warm", 2)
    assert tag(str(tmp_path / "warm"))[0] == 0  # settings remembered: requests fan out
    folder(tmp_path / "in", 300, offset=10)
    gemini.hold.clear()  # the first run's requests wait unanswered: it holds the lock
    first = threading.Thread(target=tag, args=(str(tmp_path / "in"), *C256))
    first.start()
    try:
        deadline = time.monotonic() + 20
        while gemini.in_flight < 256 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gemini.in_flight == 256
        second = CliRunner().invoke(app, ["tag", str(tmp_path / "in"), *C256])
        assert second.exit_code == 2 and "Another emotag run is writing" in second.stderr
    finally:
        gemini.hold.set()
        first.join(60)
    assert len(labels()) == 302 and blamed() == []


def test_requests_go_out_on_aiohttp_with_no_sdk_retry_and_no_thread_per_request(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    """The SDK's faster stack; one attempt a call (on aiohttp the SDK would otherwise
    resend a dropped request itself, uncounted); and emotag's own session, since the
    SDK's looks up the proxy and ~/.netrc in a thread for every request, which was half
    of a request's CPU at c=256."""
    from emotag.files import images
    from emotag.providers import Setup, spec

    setup = Setup(model="m", key=TEST_KEY, base_url=gemini.url, endpoint="loopback")
    pictures = [images.prepare(p.read_bytes()) for p in map(Path, folder(tmp_path, 64))]

    class Counting(ThreadPoolExecutor):
        submitted = 0

        def submit(self, *args: Any, **kwargs: Any) -> Future[Any]:
            Counting.submitted += 1
            return super().submit(*args, **kwargs)

    async def run() -> list[list[Answer]]:
        asyncio.get_running_loop().set_default_executor(Counting())
        provider = spec("gemini").build(setup)
        api = provider.client._api_client  # type: ignore[attr-defined]
        assert api._use_aiohttp() and api._http_options.retry_options.attempts == 1
        try:
            return await asyncio.gather(*(provider.label(p) for p in pictures))
        finally:
            await provider.aclose()

    answers = asyncio.run(run())
    assert len(answers) == gemini.count == 64 and all(len(a) == 1 for a in answers)
    assert Counting.submitted < 8, f"{Counting.submitted} thread hand-offs for 64 requests"
