"""The real API's run-level behaviours, at the default concurrency of 16: refused settings,
throttling, outages, a spent daily quota and fatal refusals never cost an image."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emotag.cli import app
from emotag.emotions import EMOTIONS
from fakes.gemini_api import FakeGemini, Reply
from fakes.proxy import forward_proxy
from helpers import make_image, read_csv

runner = CliRunner()
LABELS = Path("dataset/llm_labels.csv")
ERRORS = Path("dataset/llm_labels.errors.csv")


def folder(root: Path, count: int, offset: int = 0) -> dict[str, str]:
    """`count` distinct images; path -> the emotion the fake answers."""
    truth = {}
    for i in range(offset, offset + count):
        emotion = EMOTIONS[i % 7]
        path = make_image(root / f"img_{i:04d}.png", emotion, size=(30 + i % 40, 30 + i // 40))
        truth[str(path)] = emotion
    return truth


def tag(*args: str) -> tuple[int, dict, str]:
    result = runner.invoke(app, ["tag", *args, "--json"])
    summary = json.loads(result.stdout) if result.stdout.strip() else {}
    return result.exit_code, summary, result.stderr


def blamed() -> list[dict[str, str]]:
    return read_csv(ERRORS) if ERRORS.exists() else []


def labels() -> dict[str, str]:
    return {r["path"]: r["emotion"] for r in read_csv(LABELS)} if LABELS.exists() else {}


def refusals(fake: FakeGemini) -> int:
    return sum(1 for s in fake.labelling_requests() if s.body is not None and _refused(fake, s))


def _refused(fake: FakeGemini, seen) -> bool:
    config = seen.body.get("generationConfig", {})
    return "responseLogprobs" in config or any(k in config for k in fake.rejected_settings)


def test_logprobs_and_thinking_refused_cost_two_requests_then_none(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    gemini.logprobs = "reject"
    gemini.rejected_settings.add("thinkingConfig")
    gemini.latency = 0.05  # so that requests overlap at concurrency 16
    truth = folder(tmp_path / "a", 48)
    code, summary, _ = tag(str(tmp_path / "a"))
    assert code == 0 and labels() == truth and blamed() == []
    assert summary["refused_settings"] == refusals(gemini) == 2
    assert summary["requests"] == gemini.count == 48 + 2
    # A new process, other images: the refusals are remembered in the user cache.
    more = folder(tmp_path / "b", 16, offset=100)
    before = gemini.count
    code, summary, _ = tag(str(tmp_path / "b"))
    assert code == 0 and summary["refused_settings"] == 0
    assert gemini.count - before == 16 and refusals(gemini) == 2
    assert labels() == truth | more


def test_remembered_settings_expire(gemini: FakeGemini, tmp_path: Path) -> None:
    from emotag.providers.negotiation import SettingsMemory

    memory = SettingsMemory()
    memory.remember("somewhere", "m", {"thinking"}, {"logprobs"})
    assert memory.recall("somewhere", "m") == ({"thinking"}, {"logprobs"})
    assert SettingsMemory(max_age_days=0).recall("somewhere", "m") == (set(), set())
    memory.path.write_text("not json")
    assert memory.recall("somewhere", "m") == (set(), set())


@pytest.mark.slow
def test_unreachable_api_stops_in_under_a_minute_and_blames_nobody(
    gemini: FakeGemini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    truth = folder(tmp_path / "in", 200)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    started = time.monotonic()
    code, _, err = tag(str(tmp_path / "in"))
    elapsed = time.monotonic() - started
    assert code == 2 and elapsed < 60
    assert err.startswith("Error: Cannot reach the Gemini API at 127.0.0.1:9")
    assert "nothing was lost" in err and len(err.strip().splitlines()) == 1
    assert blamed() == [] and labels() == {}
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", gemini.url)
    code, summary, _ = tag(str(tmp_path / "in"))
    assert code == 0 and labels() == truth and summary["requests"] == gemini.count == 200


def test_a_network_blip_mid_run_just_keeps_going(gemini: FakeGemini, tmp_path: Path) -> None:
    truth = folder(tmp_path / "in", 40)
    # One image's requests are dropped three times running: with --attempts 2, it is
    # labelled only if a dropped connection costs no attempt.
    unlucky = make_image(tmp_path / "in" / "zz_unlucky.png", "cyan")
    gemini.by_colour["cyan"] = [Reply(drop=True)] * 3
    code, summary, _ = tag(str(tmp_path / "in"), "--attempts", "2")
    assert code == 0 and labels() == truth | {str(unlucky): "neutral"} and blamed() == []
    assert summary["retries"] >= 3
    assert sum(1 for s in gemini.labelling_requests() if s.colour == "cyan") == 4


def test_an_answer_cut_off_mid_body_costs_an_attempt_and_is_asked_again(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    truth = folder(tmp_path / "in", 40)
    # Headers and half a body, then a reset: the model answered (and billed), so unlike
    # a refused connection it costs an attempt, and it is asked again, never a crash.
    once = make_image(tmp_path / "in" / "zz_once.png", "cyan")
    twice = make_image(tmp_path / "in" / "zz_twice.png", "black")
    gemini.by_colour["cyan"] = [Reply(cut=True)]
    gemini.by_colour["black"] = [Reply(cut=True)] * 2
    code, summary, _ = tag(str(tmp_path / "in"), "--attempts", "2")
    assert code == 1 and labels() == truth | {str(once): "neutral"}
    assert [row["path"] for row in blamed()] == [str(twice)]
    assert blamed()[0]["reason"].startswith("gave up after 2 attempts: ClientPayloadError")
    assert summary["retries"] == 2


def test_throttling_never_uses_up_an_images_attempts(gemini: FakeGemini, tmp_path: Path) -> None:
    truth = folder(tmp_path / "in", 40)
    gemini.fault_rates = {"429": 0.6}
    code, summary, _ = tag(str(tmp_path / "in"), "--attempts", "2")
    assert code == 0 and labels() == truth and blamed() == []
    assert summary["throttled"] >= 10  # it really was throttled, many times


def test_endless_throttling_stops_at_max_wait_and_keeps_everything(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    folder(tmp_path / "in", 30)
    throttled = Reply.error(429, "RESOURCE_EXHAUSTED", "Quota exceeded", "0.2s")
    gemini.queue.extend([Reply()] * 5 + [throttled] * 1000)  # five answers, then only 429s
    started = time.monotonic()
    code, _, err = tag(str(tmp_path / "in"), "--max-wait", "2")
    assert code == 2 and time.monotonic() - started < 20
    assert "Throttled (429)" in err and "5 label(s) saved" in err
    assert len(labels()) == 5 and blamed() == []


def test_a_spent_daily_quota_stops_within_seconds_and_keeps_the_labels(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    folder(tmp_path / "in", 60)
    gemini.daily_quota_after = 20
    started = time.monotonic()
    code, _, err = tag(str(tmp_path / "in"))
    assert code == 2 and time.monotonic() - started < 10
    assert "daily request quota of gemini-3.5-flash-lite is spent" in err
    assert "GenerateRequestsPerDayPerProjectPerModel-FreeTier" in err
    assert "20 label(s) saved" in err and "--batch" in err
    assert len(err.strip().splitlines()) == 1
    assert len(labels()) == 20 and blamed() == []


def test_failed_precondition_with_known_settings_stops_within_one_wave(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    folder(tmp_path / "warm", 2)
    assert tag(str(tmp_path / "warm"))[0] == 0  # settings now remembered: requests fan out
    folder(tmp_path / "in", 60, offset=10)
    before = gemini.count
    region = "User location is not supported for the API use."
    gemini.queue.extend([Reply.error(400, "FAILED_PRECONDITION", region)] * 200)
    code, _, err = tag(str(tmp_path / "in"))
    assert code == 2 and region in err and len(err.strip().splitlines()) == 1
    assert gemini.count - before <= 17
    assert blamed() == []


@pytest.mark.slow
@pytest.mark.parametrize("run", range(3))
def test_fault_storm_labels_everything_at_default_attempts(
    gemini: FakeGemini, tmp_path: Path, run: int
) -> None:
    gemini.seed = 1000 + run
    gemini.__post_init__()
    truth = folder(tmp_path / "in", 150)
    gemini.fault_rates = {"429": 0.20, "500": 0.05, "503": 0.05, "hang": 0.02}
    code, _, _ = tag(str(tmp_path / "in"), "--timeout", "3")
    assert code == 0 and labels() == truth and blamed() == []


def test_next_images_are_prepared_while_requests_are_in_flight(
    gemini: FakeGemini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A finished request must find the next image ready, not wait for its decode; and
    what runs ahead is bounded (a 100k-image folder is not decoded into memory)."""
    import threading

    from emotag.run import engine

    planned: list[str] = []
    real_plan = engine.plan

    def counting_plan(path: str, *args: object) -> object:
        planned.append(path)
        return real_plan(path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "plan", counting_plan)
    warm = folder(tmp_path / "warm", 1, offset=500)  # settings learned: no request goes alone
    assert tag(str(tmp_path / "warm"))[0] == 0
    truth = folder(tmp_path / "in", 80)
    planned.clear()
    gemini.hold.clear()
    outcome: list[tuple[int, dict, str]] = []
    run = threading.Thread(target=lambda: outcome.append(tag(str(tmp_path / "in"))))
    run.start()
    try:
        deadline = time.monotonic() + 30
        while gemini.in_flight < 16 or len(planned) < 32:
            assert time.monotonic() < deadline, (gemini.in_flight, len(planned))
            time.sleep(0.01)
        # Room to run further ahead than it may: wait until planning stands still (half a
        # second without a new plan), or it has planned the whole folder.
        still_since, seen = time.monotonic(), len(planned)
        while time.monotonic() - still_since < 0.5 and seen < 80:
            assert time.monotonic() < deadline, seen
            time.sleep(0.01)
            if len(planned) != seen:
                still_since, seen = time.monotonic(), len(planned)
        in_flight, ahead = gemini.in_flight, len(planned)
    finally:
        gemini.hold.set()
        run.join(60)
    assert in_flight == 16  # the default concurrency
    # 16 in flight, 16 ready (the buffer is the concurrency), one more in each planner.
    assert 32 <= ahead <= 32 + min(16, engine._planners())
    code, summary, _ = outcome[0]
    assert code == 0 and summary["requests"] == 80
    assert labels() == warm | truth and blamed() == []


def test_after_the_first_answer_a_new_model_fans_out_at_once(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    # Fresh settings memory: the first request goes alone, then every worker may send.
    # (A probe lock held by each waiting worker in turn once serialised the whole run.)
    folder(tmp_path / "in", 48)
    gemini.latency = 0.1
    code, summary, _ = tag(str(tmp_path / "in"))
    assert code == 0 and summary["requests"] == 48
    assert gemini.max_in_flight >= 12  # of 16 workers


def test_answers_with_fields_newer_than_the_sdk_are_read_interactively_and_in_batch(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    """The SDK's response type refuses fields it does not know; the API adds them."""
    gemini.newer_fields = {"trafficTier": "STANDARD_2027"}
    truth = folder(tmp_path / "in", 20)
    assert tag(str(tmp_path / "in"))[0] == 0 and labels() == truth and blamed() == []
    more = folder(tmp_path / "more", 7, offset=20)
    assert tag(str(tmp_path / "more"), "--batch")[0] == 0
    for step in (["wait", "--poll", "0.01"], ["fetch"]):
        assert runner.invoke(app, ["batch", *step]).exit_code == 0
    assert labels() == {**truth, **more} and blamed() == []


def test_the_environments_proxy_carries_every_request_and_no_proxy_exempts_the_host(
    gemini: FakeGemini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """emotag's session does not let aiohttp read the environment per request, so it
    reads the proxy itself: HTTP_PROXY still carries every request, NO_PROXY still wins."""
    monkeypatch.delenv("NO_PROXY")
    truth = folder(tmp_path / "in", 40)
    with forward_proxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        code, summary, _ = tag(str(tmp_path / "in"))
        assert code == 0 and labels() == truth
        assert proxy.forwarded == gemini.count == summary["requests"] == 40
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        more = folder(tmp_path / "more", 10, offset=40)
        code, _, _ = tag(str(tmp_path / "more"))
        assert code == 0 and more.items() <= labels().items()
        assert proxy.forwarded == 40 and gemini.count == 50
