"""Batch mode end to end: the real SDK's Files and Batch calls against the loopback fake."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emotag.cli import app
from emotag.emotions import EMOTIONS
from emotag.run import batch
from fakes.gemini_api import FakeGemini, Reply
from helpers import make_image, posix_only, read_csv, start_cli

runner = CliRunner()
LABELS = Path("dataset/llm_labels.csv")
ERRORS = Path("dataset/llm_labels.errors.csv")
COMPARED = ("path", "emotion", "confidence", "confidence_source", "model", "faces", "duplicate_of")


def invoke(*args: str):
    return runner.invoke(app, list(args))


def images(root: Path, count: int = 7) -> list[Path]:
    return [
        make_image(root / f"img_{i}.png", EMOTIONS[i % 7], size=(30 + i, 30)) for i in range(count)
    ]


def rows(path: Path) -> dict[str, tuple[str, ...]]:
    return {r["path"]: tuple(r[c] for c in COMPARED) for r in read_csv(path)}


def test_tag_batch_wait_fetch_gives_the_interactive_csv(gemini: FakeGemini, tmp_path: Path) -> None:
    root = tmp_path / "in"
    images(root)
    shutil.copy(root / "img_0.png", root / "copy_of_0.png")
    gemini.batch_polls = 3  # pending, running, running, succeeded
    submitted = invoke("tag", str(root), "--batch", "--json")
    assert submitted.exit_code == 0, submitted.output
    assert json.loads(submitted.stdout) | {} == {
        "jobs": 1,
        "requests": 7,
        "reattached": 0,
        "duplicates": 1,
        "skipped": 0,
        "failed": 0,
        "settled_locally": 0,
        "warnings": [],
    }
    # One tiny probe learns which settings the model accepts; no image is sent live.
    probes = gemini.labelling_requests()
    assert [p.image_size for p in probes] == [(64, 64)] and gemini.batch_creates == 1
    status = invoke("batch", "status")
    assert status.exit_code == 0 and "running" in status.stdout
    waited = invoke("batch", "wait", "--poll", "0.01")
    assert waited.exit_code == 0, waited.output
    assert "succeeded" in waited.stdout
    fetched = invoke("batch", "fetch")
    assert fetched.exit_code == 0, fetched.output
    assert "8 labelled, 0 failed" in fetched.stdout
    assert len(gemini.batch_requests()) == 7
    # The same images through the interactive path (no logprobs, as batch requests have none).
    assert invoke("tag", str(root), "-o", "interactive.csv", "--no-logprobs").exit_code == 0
    interactive = rows(Path("interactive.csv"))
    batched = rows(LABELS)
    copy = str(root / "copy_of_0.png")
    assert {p: v[:-1] for p, v in batched.items()} == {p: v[:-1] for p, v in interactive.items()}
    pair = {copy, str(root / "img_0.png")}
    for table in (batched, interactive):  # one of the identical pair names the other
        links = {p: v[-1] for p, v in table.items() if v[-1]}
        assert len(links) == 1 and {*links, *links.values()} == pair
    # The request in the JSONL is the interactive request, minus logprobs. The local
    # JSONL is gone once its job exists; the one the fake received is read instead.
    (job,) = gemini.jobs.values()
    line = json.loads(gemini.files[job["_input"]].decode().splitlines()[0])
    interactive_config = gemini.labelling_requests()[-1].body["generationConfig"]
    # One builder makes both bodies: the same config, less logprobs (none asked here).
    assert line["request"]["generationConfig"] == interactive_config
    again = invoke("batch", "fetch")
    assert "0 labelled" in again.stdout and len(read_csv(LABELS)) == 8
    # Nothing but the CSVs, a small state and the folders the CSV labels is left there.
    assert sorted(p.name for p in Path("dataset").iterdir()) == [
        ".llm_labels.csv.lock",
        "llm_labels.batch.json",
        "llm_labels.csv",
        "llm_labels.errors.csv",
        "llm_labels.roots.json",
    ]


def test_tag_batch_again_reattaches_instead_of_submitting(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    images(tmp_path / "in", 3)
    gemini.batch_polls = 100
    assert invoke("tag", str(tmp_path / "in"), "--batch").exit_code == 0
    again = invoke("tag", str(tmp_path / "in"), "--batch")
    assert again.exit_code == 0 and "still open; nothing new was submitted" in again.stdout
    assert gemini.batch_creates == 1


def test_large_runs_are_split_into_jobs(gemini: FakeGemini, tmp_path: Path) -> None:
    images(tmp_path / "in", 5)
    result = invoke("tag", str(tmp_path / "in"), "--batch", "--batch-size", "2", "--json")
    assert json.loads(result.stdout)["jobs"] == 3 and gemini.batch_creates == 3
    assert invoke("batch", "wait", "--poll", "0.01").exit_code == 0
    assert "5 labelled" in invoke("batch", "fetch").stdout


def test_partial_failures_go_to_the_errors_csv_and_retry_failed_resubmits_them(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    root = tmp_path / "in"
    images(root, 3)
    make_image(root / "rejected.png", "cyan")
    make_image(root / "wall.png", "white")
    make_image(root / "chatty.png", "black")
    gemini.by_colour.update(
        cyan=Reply.error(400, "INVALID_ARGUMENT", "Unable to process input image."),
        white=Reply(faces="none", emotion="neutral"),
        black=Reply.cut_off(),
    )
    assert invoke("tag", str(root), "--batch").exit_code == 0
    assert invoke("batch", "wait", "--poll", "0.01").exit_code == 0
    fetched = invoke("batch", "fetch")
    assert fetched.exit_code == 1 and "3 labelled, 3 failed" in fetched.stdout
    reasons = {Path(r["path"]).name: r["reason"] for r in read_csv(ERRORS)}
    assert reasons == {
        "rejected.png": "batch request failed: 400 Unable to process input image.",
        "wall.png": "no face",
        "chatty.png": "answer cut off (MAX_TOKENS)",
    }
    gemini.by_colour["cyan"] = Reply(emotion="happy")  # the image is fine now
    retry = invoke("tag", str(root), "--batch", "--retry-failed", "--json")
    # The no-face answer is not paid for again; the other two are resubmitted.
    assert json.loads(retry.stdout)["requests"] == 2
    assert invoke("batch", "wait", "--poll", "0.01").exit_code == 0
    assert invoke("batch", "fetch").exit_code == 1  # chatty fails again
    assert "rejected.png" in {Path(r["path"]).name for r in read_csv(LABELS)}
    assert {Path(r["path"]).name for r in read_csv(ERRORS)} == {"wall.png", "chatty.png"}


def test_expired_job_marks_its_images_failed(gemini: FakeGemini, tmp_path: Path) -> None:
    images(tmp_path / "in", 2)
    gemini.batch_outcome = "BATCH_STATE_EXPIRED"
    assert invoke("tag", str(tmp_path / "in"), "--batch").exit_code == 0
    assert invoke("batch", "wait", "--poll", "0.01").exit_code == 0
    fetched = invoke("batch", "fetch")
    assert fetched.exit_code == 1
    assert {r["reason"] for r in read_csv(ERRORS)} == {
        "batch job expired; retry with --retry-failed"
    }


def test_crash_after_creating_a_job_reattaches_by_display_name(
    gemini: FakeGemini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from emotag.providers.gemini import GeminiBatches

    images(tmp_path / "in", 3)
    real_create = GeminiBatches.create

    def create_then_die(self: GeminiBatches, file: str, display_name: str) -> tuple[str, str]:
        real_create(self, file, display_name)  # the job exists at the API...
        raise KeyboardInterrupt  # ...and the process dies before it saves the job's name

    monkeypatch.setattr(GeminiBatches, "create", create_then_die)
    assert invoke("tag", str(tmp_path / "in"), "--batch").exit_code == 130
    monkeypatch.setattr(GeminiBatches, "create", real_create)
    saved = batch.load_state(LABELS.absolute())
    assert saved is not None and saved.jobs[0].file and not saved.jobs[0].name
    assert gemini.batch_creates == 1
    assert invoke("batch", "wait", "--poll", "0.01").exit_code == 0
    assert "3 labelled" in invoke("batch", "fetch").stdout
    assert gemini.batch_creates == 1  # re-attached by display name, not paid twice


@posix_only
def test_kill_9_while_waiting_then_fetch(fake: FakeGemini, tmp_path: Path) -> None:
    images(tmp_path / "in", 4)
    fake.batch_polls = 10_000

    def cli(*args: str) -> subprocess.Popen[str]:
        return start_cli(fake, tmp_path, *args)

    submit = cli("tag", "in", "--batch")
    submit.communicate(timeout=60)
    assert submit.returncode == 0
    waiting = cli("batch", "wait", "--poll", "0.05")
    deadline = time.monotonic() + 30
    while next(iter(fake.jobs.values()))["_polls"] < 2:  # the waiter really polled
        assert time.monotonic() < deadline
        time.sleep(0.02)
    waiting.send_signal(signal.SIGKILL)
    waiting.communicate()
    fake.batch_polls = 1  # the job finishes at its next poll
    fetch = cli("batch", "fetch")
    out, err = fetch.communicate(timeout=60)
    assert fetch.returncode == 0, err
    assert "4 labelled" in out and len(read_csv(tmp_path / LABELS)) == 4
    assert fake.batch_creates == 1


def test_batch_commands_without_jobs_say_how_to_start(gemini: FakeGemini) -> None:
    result = invoke("batch", "status")
    assert result.exit_code == 2 and "emotag tag DIR --batch" in result.stderr


def test_cancel(gemini: FakeGemini, tmp_path: Path) -> None:
    images(tmp_path / "in", 2)
    gemini.batch_polls = 100
    assert invoke("tag", str(tmp_path / "in"), "--batch").exit_code == 0
    assert "Cancelled 1 job" in invoke("batch", "cancel").stdout
    fetched = invoke("batch", "fetch")
    assert fetched.exit_code == 1
    assert {r["reason"] for r in read_csv(ERRORS)} == {
        "batch job cancelled; retry with --retry-failed"
    }


def test_dry_run_shows_jobs_and_batch_tokens(fake: FakeGemini, tmp_path: Path) -> None:
    images(tmp_path / "in", 5)
    result = invoke(
        "tag", str(tmp_path / "in"), "--dry-run", "--batch", "--batch-size", "2", "--json"
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["batch_jobs"] == 3
    assert report["batch_billed_input_tokens"] == report["input_tokens"] // 2
    assert fake.count == 0


def test_unreachable_api_is_one_line_and_loses_nothing(
    gemini: FakeGemini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images(tmp_path / "in", 2)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    result = invoke("tag", str(tmp_path / "in"), "--batch")
    assert result.exit_code == 2
    assert (
        result.stderr.startswith("Error: Cannot reach the Gemini API")
        and "Traceback" not in result.output
    )
    saved = batch.load_state(LABELS.absolute())
    assert saved is not None and len(saved.jobs) == 1 and not saved.jobs[0].file
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", gemini.url)
    assert invoke("batch", "status").exit_code == 0  # re-attach uploads and creates the job
    assert gemini.batch_creates == 1


@pytest.mark.parametrize(
    "spent",
    [
        pytest.param(lambda g: setattr(g, "daily_quota_after", 0), id="daily-quota"),
        pytest.param(lambda g: setattr(g, "quota_until", time.monotonic() + 600), id="throttled"),
    ],
)
@pytest.mark.parametrize("remembered", [False, True], ids=["new-model", "settings-remembered"])
def test_batch_is_the_way_out_when_the_interactive_quota_is_refused(
    gemini: FakeGemini, tmp_path: Path, spent, remembered: bool
) -> None:
    if remembered:  # an earlier interactive run learned the model's settings
        images(tmp_path / "before", 2)
        assert invoke("tag", str(tmp_path / "before"), "-o", "before.csv").exit_code == 0
    spent(gemini)
    images(tmp_path / "in")
    submitted = invoke("tag", str(tmp_path / "in"), "--batch", "--json")
    assert submitted.exit_code == 0, submitted.output
    result = json.loads(submitted.stdout)
    assert (result["jobs"], result["requests"]) == (1, 7)
    # Unknown settings stay out of the job, and the user is told; known ones go in.
    assert bool(result["warnings"]) is not remembered
    assert invoke("batch", "wait", "--poll", "0.01").exit_code == 0
    fetched = invoke("batch", "fetch")
    assert fetched.exit_code == 0, fetched.output
    assert {r["emotion"] for r in read_csv(LABELS)} == set(EMOTIONS)
    lines = [s.body["generationConfig"] for s in gemini.batch_requests()]
    assert len(lines) == 7
    assert all(("thinkingConfig" in c) is remembered for c in lines)
    assert not ERRORS.exists() or read_csv(ERRORS) == []


def test_one_jsonl_on_disk_at_a_time_and_none_once_the_jobs_exist(
    gemini: FakeGemini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from emotag.providers.gemini import GeminiBatches

    images(tmp_path / "in", 7)
    folder = Path("dataset/llm_labels.batch")
    on_disk: list[int] = []
    real_upload = GeminiBatches.upload

    def counting_upload(self: GeminiBatches, path: str, display_name: str) -> str:
        on_disk.append(len(list(folder.glob("*.jsonl"))))
        return real_upload(self, path, display_name)

    monkeypatch.setattr(GeminiBatches, "upload", counting_upload)
    result = invoke("tag", str(tmp_path / "in"), "--batch", "--batch-size", "2", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["jobs"] == 4 and on_disk == [1, 1, 1, 1]
    assert not list(folder.glob("*.jsonl")) and len(list(folder.glob("*.keys.json"))) == 4
    state = batch.state_path(LABELS.absolute()).read_text()
    assert str(tmp_path / "in") not in state  # paths live in the per-job keys files
    assert invoke("batch", "wait", "--poll", "0.01").exit_code == 0
    assert invoke("batch", "fetch").exit_code == 0
    assert not folder.exists() and len(read_csv(LABELS)) == 7


def test_killed_after_a_job_exists_but_before_its_jsonl_is_removed(
    gemini: FakeGemini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images(tmp_path / "in", 3)
    real_drop = batch._drop_input

    def die(*args: object) -> None:
        raise KeyboardInterrupt  # the job is created and saved; the removal never runs

    monkeypatch.setattr(batch, "_drop_input", die)
    assert invoke("tag", str(tmp_path / "in"), "--batch").exit_code == 130
    monkeypatch.setattr(batch, "_drop_input", real_drop)
    assert len(list(Path("dataset/llm_labels.batch").glob("*.jsonl"))) == 1
    assert invoke("batch", "status").exit_code == 0  # re-attaches, and tidies
    assert not list(Path("dataset/llm_labels.batch").glob("*.jsonl"))
    assert invoke("batch", "wait", "--poll", "0.01").exit_code == 0
    assert "3 labelled" in invoke("batch", "fetch").stdout
    assert gemini.batch_creates == 1


def test_killed_mid_submission_the_next_run_sends_only_the_rest(
    gemini: FakeGemini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from emotag.providers.gemini import GeminiBatches

    root = tmp_path / "in"
    images(root, 7)
    shutil.copy(root / "img_0.png", root / "zz_late_copy.png")  # planned after its job left
    real_upload = GeminiBatches.upload
    calls = {"n": 0}

    def die_at_the_third(self: GeminiBatches, path: str, display_name: str) -> str:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # two jobs exist; the rest of the folder is not planned
        return real_upload(self, path, display_name)

    monkeypatch.setattr(GeminiBatches, "upload", die_at_the_third)
    assert invoke("tag", str(root), "--batch", "--batch-size", "2").exit_code == 130
    monkeypatch.setattr(GeminiBatches, "upload", real_upload)
    assert gemini.batch_creates == 2
    again = invoke("tag", str(root), "--batch", "--batch-size", "2", "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["reattached"] == 3  # the two jobs, and the saved third
    assert invoke("batch", "wait", "--poll", "0.01").exit_code == 0
    assert invoke("batch", "fetch").exit_code == 0
    assert gemini.batch_creates == 4 and len(gemini.batch_requests()) == 7  # none paid twice
    rows = {Path(r["path"]).name: r for r in read_csv(LABELS)}
    assert len(rows) == 8 and rows["zz_late_copy.png"]["duplicate_of"].endswith("img_0.png")


@pytest.mark.parametrize("flags", [["-q"], ["--json"]], ids=["quiet", "json"])
def test_batch_commands_take_the_output_options_of_tag(
    gemini: FakeGemini, tmp_path: Path, flags: list[str]
) -> None:
    images(tmp_path / "in", 3)
    assert invoke("tag", str(tmp_path / "in"), "--batch", *flags).exit_code == 0
    outputs = []
    for command in (["status"], ["wait", "--poll", "0.01"], ["fetch"], ["cancel"]):
        result = invoke("batch", *command, *flags)
        assert result.exit_code == 0, result.output
        outputs.append(result.stdout)
    if flags == ["-q"]:
        assert outputs == ["", "", "", ""]
    else:
        status, waited, fetched, cancelled = (json.loads(text) for text in outputs)
        assert [job["state"] for job in waited["jobs"]] == ["succeeded"]
        assert status["complete"] and fetched["labelled"] == 3 and cancelled == {"cancelled": 0}
    assert len(read_csv(LABELS)) == 3


def test_an_interactive_run_is_refused_while_batch_jobs_are_open(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    root = tmp_path / "in"
    images(root)
    gemini.batch_polls = 50  # the job stays open
    assert invoke("tag", str(root), "--batch").exit_code == 0
    probes = gemini.count
    refused = invoke("tag", str(root))
    assert refused.exit_code == 2
    assert "1 batch job(s) are still open" in refused.stderr and "batch fetch" in refused.stderr
    assert gemini.count == probes  # nothing paid twice
    forced = invoke("tag", str(root), "--force")
    assert forced.exit_code == 0, forced.output
    assert "being paid for twice (--force)" in " ".join(forced.output.split())
