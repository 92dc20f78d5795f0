"""Faults, crashes and hostile input: nothing lost, nothing paid twice, nothing leaked."""

from __future__ import annotations

import json
import os
import random
import signal
import time
import traceback
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from emotag.cli import app
from emotag.emotions import EMOTIONS
from emotag.errors import FatalAPIError
from emotag.files.csvfiles import read_labels
from fakes.gemini_api import TEST_KEY, FakeGemini, Reply
from helpers import csv_line, make_image, posix_only, read_csv, start_cli
from test_images import encode, png_with_size

runner = CliRunner()
LABELS = Path("dataset/llm_labels.csv")
ERRORS = Path("dataset/llm_labels.errors.csv")


def dataset(root: Path, count: int) -> dict[str, str]:
    """`count` distinct images; returns path -> the emotion the fake will answer."""
    truth = {}
    for i in range(count):
        emotion = EMOTIONS[i % len(EMOTIONS)]
        path = make_image(
            root / f"d{i % 10}" / f"img_{i:04d}.png", emotion, size=(40 + i % 50, 30 + i // 50)
        )
        truth[str(path)] = emotion
    return truth


def wait_for(condition, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    """Poll for a state instead of sleeping for a guessed time."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def assert_labels_exactly(truth: dict[str, str]) -> None:
    rows = read_csv(LABELS)
    assert len(rows) == len({r["path"] for r in rows}), "duplicate rows"
    assert {r["path"]: r["emotion"] for r in rows} == truth


# --- faults -------------------------------------------------------------------------------


@pytest.mark.slow
def test_fault_storm_labels_everything_without_a_retry_flood(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    truth = dataset(tmp_path / "in", 300)
    gemini.fault_rates = {"429": 0.20, "500": 0.05, "503": 0.05, "hang": 0.02}
    started = time.monotonic()
    result = runner.invoke(
        app,
        ["tag", str(tmp_path / "in"), "--timeout", "5", "--attempts", "12", "-c", "16", "--json"],
    )
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert_labels_exactly(truth)
    summary = json.loads(result.stdout)
    assert summary["requests"] == gemini.count <= 1.6 * 300
    assert summary["retries"] > 0.2 * 300
    assert elapsed < 120  # bounded: a hung request never waits past --timeout


def test_quota_storm_sends_one_probe_not_a_flood(gemini: FakeGemini, tmp_path: Path) -> None:
    truth = dataset(tmp_path / "in", 40)
    gemini.quota_window = 3.0  # from the first request: start-up is not in the window
    gemini.quota_delay = "1s"
    result = runner.invoke(app, ["tag", str(tmp_path / "in"), "-c", "16", "--attempts", "10"])
    assert result.exit_code == 0, result.output
    assert_labels_exactly(truth)
    throttled = sum(1 for s in gemini.seen if s.time < gemini.quota_until)
    # One probe per retryDelay (1 s) in the 3 s outage: at 0, 1 and 2 s (each a little
    # later by its round trip), never a wave per worker.
    assert 3 <= throttled <= 4


# --- crashes ------------------------------------------------------------------------------


@pytest.mark.slow
@posix_only
@pytest.mark.parametrize("concurrency", [8, 256])
def test_kill_9_five_times_then_resume_loses_nothing_and_pays_little(
    fake: FakeGemini, tmp_path: Path, concurrency: int
) -> None:
    truth = dataset(tmp_path / "in", 300 if concurrency < 100 else 1200)
    fake.latency = 0.1
    rng = random.Random(7)
    for _ in range(5):
        before = len(read_labels(LABELS).labels) if LABELS.exists() else 0
        proc = start_cli(fake, tmp_path, "tag", "in", "-c", str(concurrency))
        # Killed once it made progress (a random amount of it), never before.
        wanted = before + rng.randint(10, 30)
        wait_for(lambda n=wanted: LABELS.exists() and len(read_labels(LABELS).labels) >= n)
        proc.kill()
        proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        assert len(read_labels(LABELS).labels) >= wanted
    final = start_cli(fake, tmp_path, "tag", "in", "-c", str(concurrency))
    _, err = final.communicate(timeout=120)
    assert final.returncode == 0, err
    assert_labels_exactly({k: v for k, v in truth.items()})
    # At most the requests in flight at each kill are paid for again.
    assert len(fake.labelling_requests()) <= len(truth) + 5 * concurrency
    assert read_labels(LABELS).problems == []


@pytest.mark.slow
@posix_only
def test_ctrl_c_stops_fast_keeps_labels_and_says_how_to_resume(
    fake: FakeGemini, tmp_path: Path
) -> None:
    dataset(tmp_path / "in", 200)
    fake.latency = 0.05
    proc = start_cli(fake, tmp_path, "tag", "in", "-c", "4")
    wait_for(lambda: (tmp_path / LABELS).exists() and len(read_csv(tmp_path / LABELS)) >= 4)
    fake.hold.clear()  # from now on no request is answered: only a run that stops can exit
    wait_for(lambda: fake.in_flight >= 1)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        fake.hold.set()
    assert proc.returncode == 130
    assert "run the same command again" in err
    kept = read_csv(LABELS)
    assert 0 < len(kept) < 200
    before = len(fake.labelling_requests())
    resumed = start_cli(fake, tmp_path, "tag", "in", "-c", "16")
    resumed.communicate(timeout=60)
    assert resumed.returncode == 0
    assert len(read_csv(LABELS)) == 200
    assert len(fake.labelling_requests()) - before <= 200 - len(kept) + 4


# --- hostile images and names ------------------------------------------------------------


def test_hostile_images_are_reported_and_the_rest_labelled(
    gemini: FakeGemini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    root = tmp_path / "in"
    good = make_image(root / "good.png", "happy")
    (root / "empty.jpg").write_bytes(b"")
    (root / "truncated.jpg").write_bytes(encode(Image.new("RGB", (300, 300), "blue"), "JPEG")[:500])
    (root / "text.png").write_text("not an image")
    (root / "bomb.png").write_bytes(png_with_size(60_000, 60_000))
    (root / "locked.png").write_bytes(good.read_bytes() + b"x")
    (root / "x.jpg").mkdir()  # a folder with an image name is walked as a folder
    make_image(root / "x.jpg" / "inside.png", "sad")
    Image.new("I;16", (30, 30), 128 * 257).save(root / "sixteen.png")  # mid-grey in 16 bits
    (root / "cmyk.jpg").write_bytes(
        encode(Image.new("RGB", (40, 40), (200, 20, 20)).convert("CMYK"), "JPEG")
    )
    frames = [Image.new("RGB", (30, 30), c).convert("P") for c in ((20, 40, 210), (240, 200, 20))]
    frames[0].save(root / "anim.gif", save_all=True, append_images=frames[1:], duration=40)
    exif = Image.Exif()
    exif[0x0112] = 6
    (root / "rotated.jpg").write_bytes(
        encode(Image.new("RGB", (80, 40), (130, 20, 150)), "JPEG", exif=exif)
    )

    real_read = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "locked.png":
            raise PermissionError(13, "Permission denied")  # root ignores chmod, so inject it
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    result = runner.invoke(app, ["tag", str(root)])
    assert result.exit_code == 1, result.output
    labels = {Path(r["path"]).name: r["emotion"] for r in read_csv(LABELS)}
    assert labels == {
        "good.png": "happy",
        "inside.png": "sad",
        "sixteen.png": "neutral",
        "cmyk.jpg": "angry",
        "anim.gif": "sad",
        "rotated.jpg": "fear",
    }
    reasons = {Path(r["path"]).name: r["reason"] for r in read_csv(ERRORS)}
    assert reasons == {
        "empty.jpg": "unreadable image: empty file",
        "truncated.jpg": reasons["truncated.jpg"],
        "text.png": "unreadable image: not an image Pillow can read",
        "bomb.png": reasons["bomb.png"],
        "locked.png": "cannot read file: Permission denied",
    }
    assert reasons["truncated.jpg"].startswith("unreadable image: corrupt or truncated image")
    assert reasons["bomb.png"].startswith("unreadable image: image too large (decompression bomb")
    rotated = next(s for s in gemini.seen if s.colour == "fear")
    assert rotated.image_size == (40, 80)  # EXIF orientation applied before upload


def test_file_deleted_between_discovery_and_upload(tmp_path: Path) -> None:
    import asyncio

    from emotag.run.engine import Engine
    from emotag.run.recorder import Recorder
    from emotag.run.resume import ResumeIndex
    from helpers import ScriptedProvider

    kept = make_image(tmp_path / "a.png")
    gone = tmp_path / "gone.png"
    recorder = Recorder(tmp_path / "l.csv", tmp_path / "e.csv", "m")
    engine = Engine(ScriptedProvider(), recorder, ResumeIndex())
    summary = asyncio.run(engine.run(lambda skip: [kept, gone]))
    recorder.close()
    assert summary.labelled == 1
    assert (
        read_csv(tmp_path / "e.csv")[0]["reason"] == "cannot read file: No such file or directory"
    )


@posix_only  # names that are not valid UTF-8, a folder symlink
def test_hostile_names_round_trip_through_the_csv(gemini: FakeGemini, tmp_path: Path) -> None:
    root = tmp_path / "in"
    names = [
        "with space.png",
        "comma,name.png",
        'quote"d.png',
        "new\nline.png",
        "-leading-dash.png",
        "ünïcødé_顔.png",
        "x" * 250 + ".png",
    ]
    for i, name in enumerate(names):
        make_image(root / name, EMOTIONS[i % 7], size=(30 + i, 30))
    raw = os.fsencode(str(root)) + b"/caf\xe9.png"  # not valid UTF-8
    make_image(Path(os.fsdecode(raw)), "sad", size=(50, 50))
    (root / "loop").symlink_to(root)
    result = runner.invoke(app, ["tag", str(root), "--follow-symlinks"])
    assert result.exit_code == 0, result.output
    on_disk = {str(p) for p in root.iterdir() if p.is_file()}
    rows = read_csv(LABELS)
    assert {r["path"] for r in rows} == on_disk
    assert len(rows) == 8
    assert raw in LABELS.read_bytes()


# --- output safety ------------------------------------------------------------------------


def test_unwritable_output_fails_before_any_request(gemini: FakeGemini, tmp_path: Path) -> None:
    dataset(tmp_path / "in", 3)
    (tmp_path / "blocker").write_text("a file, not a folder")
    result = runner.invoke(
        app, ["tag", str(tmp_path / "in"), "-o", str(tmp_path / "blocker" / "l.csv")]
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: Cannot write") and "Traceback" not in result.output
    assert gemini.count == 0


@pytest.mark.slow
@posix_only
def test_disk_full_mid_run_stops_cleanly_and_resumes(fake: FakeGemini, tmp_path: Path) -> None:
    truth = dataset(tmp_path / "in", 60)

    def small_disk() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of dying
        resource.setrlimit(resource.RLIMIT_FSIZE, (6000, 6000))

    proc = start_cli(fake, tmp_path, "tag", "in", "-c", "4", preexec_fn=small_disk)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert err.startswith("Error: Cannot write") and "Rows written so far are kept" in err
    partial = read_labels(LABELS)
    assert partial.problems == [] and 0 < len(partial.labels) < 60
    resumed = start_cli(fake, tmp_path, "tag", "in")
    resumed.communicate(timeout=60)
    assert resumed.returncode == 0
    assert_labels_exactly(truth)


def test_hand_edited_bad_row_is_reported_with_its_line(gemini: FakeGemini, tmp_path: Path) -> None:
    dataset(tmp_path / "in", 3)
    assert runner.invoke(app, ["tag", str(tmp_path / "in")]).exit_code == 0
    with open(LABELS, "a", newline="") as handle:
        handle.write(csv_line("z.png", "/z.png", "bored"))
    result = runner.invoke(app, ["tag", str(tmp_path / "in")])
    assert result.exit_code == 2
    assert f"{LABELS.resolve()}:5: 'bored' is not one of the seven emotions" in result.stderr
    assert "z.png" in LABELS.read_text()  # not silently dropped


def test_second_run_on_the_same_output_is_refused(fake: FakeGemini, tmp_path: Path) -> None:
    truth = dataset(tmp_path / "in", 30)
    fake.latency = 0.2
    fake.hold.clear()  # the first run's requests wait unanswered: it holds the lock
    first = start_cli(fake, tmp_path, "tag", "in", "-c", "2")
    try:
        wait_for(lambda: fake.in_flight >= 1)
        second = start_cli(fake, tmp_path, "tag", "in")
        _, err = second.communicate(timeout=30)
        sent = fake.count  # the first run's one held request; the second sent nothing
    finally:
        fake.hold.set()
    assert second.returncode == 2 and "Another emotag run is writing" in err
    assert sent == 1
    first.communicate(timeout=60)
    assert first.returncode == 0
    assert_labels_exactly(truth)


# --- secrets ------------------------------------------------------------------------------


def test_the_key_never_appears_in_any_output(
    gemini: FakeGemini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "in"
    dataset(root, 5)
    make_image(root / "odd.png", "cyan")
    (root / "broken.png").write_bytes(b"junk")
    gemini.by_colour["cyan"] = Reply.blocked_prompt()
    outputs: list[str] = []

    def invoke(*args: str) -> Result:
        result = runner.invoke(app, list(args))
        trace = traceback.format_exception(result.exception) if result.exception else []
        outputs.extend([result.stdout, result.stderr, repr(result.exception), *trace])
        return result

    assert invoke("tag", str(root)).exit_code == 1  # two images without a label
    assert invoke("key", "status").exit_code == 0
    gemini.api_key = "another"  # the server no longer takes this key
    refused = invoke("tag", str(root), "--force")
    assert refused.exit_code == 2 and "rejected the key" in refused.stderr
    gemini.api_key = TEST_KEY
    gemini.unknown_models.add("gone")
    gone = invoke("tag", str(root), "-m", "gone")
    assert gone.exit_code == 2 and "'gone'" in gone.stderr
    monkeypatch.setenv("EMOTAG_DEBUG", "1")
    debug = invoke("tag", str(root), "-m", "gone")  # the traceback path
    # EMOTAG_DEBUG: the error is raised with its traceback (checked for the key below).
    assert isinstance(debug.exception, FatalAPIError) and "gone" in str(debug.exception)
    assert "Error:" not in debug.stderr
    invoke("rename", "-l", str(LABELS), "--yes", "--journal", "j.csv")
    files = [p.read_bytes() for p in Path().rglob("*.csv")]
    assert files and all(TEST_KEY.encode() not in data for data in files)
    assert all(TEST_KEY not in text for text in outputs)
    assert all(TEST_KEY not in seen.path for seen in gemini.seen)
    assert all(seen.headers["x-goog-api-key"] == TEST_KEY for seen in gemini.seen)
