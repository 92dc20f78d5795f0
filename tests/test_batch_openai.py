"""`tag --provider openai --batch` end to end: the real `openai` SDK's Files and Batch calls
against the loopback fake, which checks every input file as OpenAI does."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from openai import OpenAI
from typer.testing import CliRunner

from emotag.cli import app
from emotag.emotions import EMOTIONS
from emotag.run import batch
from fakes.openai_api import OPENAI_TEST_KEY, FakeOpenAI, Reply
from helpers import make_image, read_csv

runner = CliRunner()
LABELS = Path("dataset/llm_labels.csv")
ERRORS = Path("dataset/llm_labels.errors.csv")
MODEL = ("--provider", "openai", "-m", "gpt-4.1-mini")


def invoke(*args: str):
    return runner.invoke(app, list(args))


def folder(root: Path, count: int = 7) -> dict[str, str]:
    truth = {}
    for i in range(count):
        emotion = EMOTIONS[i % 7]
        truth[str(make_image(root / f"img_{i}.png", emotion, size=(30 + i, 30)))] = emotion
    return truth


def test_every_image_through_one_job_then_fetch_twice(server: FakeOpenAI, tmp_path: Path) -> None:
    root = tmp_path / "in"
    truth = folder(root)
    shutil.copy(root / "img_0.png", root / "copy_of_0.png")
    truth[str(root / "copy_of_0.png")] = truth[str(root / "img_0.png")]
    server.batch_polls = 2
    submitted = invoke("tag", str(root), *MODEL, "--batch", "--json")
    assert submitted.exit_code == 0, submitted.output
    assert json.loads(submitted.stdout) == {
        "jobs": 1,
        "requests": 7,
        "reattached": 0,
        "duplicates": 1,
        "skipped": 0,
        "failed": 0,
        "settled_locally": 0,
        "warnings": [],
    }
    # One tiny live probe (grey) learns the model's settings; every image goes in the job.
    assert [s.colour for s in server.requests()] == ["neutral"] and server.batch_creates == 1
    lines = server.batch_lines()
    assert len(lines) == 7 and {line["url"] for line in lines} == {"/v1/chat/completions"}
    assert {line["body"]["model"] for line in lines} == {"gpt-4.1-mini"}
    assert all(len(line["custom_id"]) <= 64 for line in lines)
    assert lines[0]["body"]["response_format"]["type"] == "json_schema"
    status = invoke("batch", "status", "--json")
    assert json.loads(status.stdout)["provider"] == "openai"
    waited = invoke("batch", "wait", "--poll", "0.01", "--json")
    assert waited.exit_code == 0, waited.output
    assert [job["state"] for job in json.loads(waited.stdout)["jobs"]] == ["succeeded"]
    fetched = invoke("batch", "fetch")
    assert fetched.exit_code == 0, fetched.output
    assert "8 labelled, 0 failed" in fetched.stdout
    labelled = {r["path"]: r["emotion"] for r in read_csv(LABELS)}
    assert labelled == truth
    assert {r["confidence_source"] for r in read_csv(LABELS)} == {"logprobs"}
    again = invoke("batch", "fetch")
    assert again.exit_code == 0 and "0 labelled" in again.stdout
    assert len(read_csv(LABELS)) == 8
    assert not Path("dataset/llm_labels.batch").exists()  # no JSONL or keys left behind
    # A live re-run finds everything done: nothing is paid twice.
    live = invoke("tag", str(root), *MODEL, "--json")
    assert json.loads(live.stdout)["requests"] == 0


def test_a_rerun_reattaches_and_a_lost_job_id_is_found_again(
    server: FakeOpenAI, tmp_path: Path
) -> None:
    folder(tmp_path / "in", 3)
    server.batch_polls = 100
    assert invoke("tag", str(tmp_path / "in"), *MODEL, "--batch").exit_code == 0
    again = invoke("tag", str(tmp_path / "in"), *MODEL, "--batch")
    assert again.exit_code == 0 and "still open; nothing new was submitted" in again.stdout
    # A crash between creating the job and saving its id: the id is found by metadata.
    state_file = batch.state_path(LABELS.absolute())
    saved = json.loads(state_file.read_text())
    saved["jobs"][0]["name"] = ""
    state_file.write_text(json.dumps(saved))
    assert invoke("tag", str(tmp_path / "in"), *MODEL, "--batch").exit_code == 0
    assert server.batch_creates == 1
    reloaded = batch.load_state(LABELS.absolute())
    assert reloaded is not None and reloaded.jobs[0].name.startswith("batch_")


def test_votes_go_as_one_line_each_and_are_tallied(server: FakeOpenAI, tmp_path: Path) -> None:
    folder(tmp_path / "in", 3)
    result = invoke("tag", str(tmp_path / "in"), *MODEL, "--batch", "--votes", "3", "--json")
    assert json.loads(result.stdout)["requests"] == 9
    ids = [line["custom_id"] for line in server.batch_lines()]
    assert len(set(ids)) == 9 and max(map(len, ids)) <= 64
    assert invoke("batch", "wait", "--poll", "0.01").exit_code == 0
    assert invoke("batch", "fetch").exit_code == 0
    assert all(r["votes"].endswith(":3") for r in read_csv(LABELS))


def test_a_server_without_the_batch_api_gets_one_line(server: FakeOpenAI, tmp_path: Path) -> None:
    folder(tmp_path / "in", 2)
    server.batch_api = False
    result = invoke("tag", str(tmp_path / "in"), *MODEL, "--batch")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: 127.0.0.1") and "has no Batch API" in result.stderr
    assert "Traceback" not in result.output and len(result.stderr.splitlines()) == 1


def test_a_job_the_service_refuses_fails_its_images_with_the_reason(
    server: FakeOpenAI, tmp_path: Path
) -> None:
    folder(tmp_path / "in", 3)
    server.batch_max_requests = 2  # as a 50,001-line file would be refused
    assert invoke("tag", str(tmp_path / "in"), *MODEL, "--batch").exit_code == 0
    status = invoke("batch", "wait", "--poll", "0.01", "--json")
    (job,) = json.loads(status.stdout)["jobs"]
    assert job["state"] == "failed" and job["detail"].startswith("too_many_requests")
    fetched = invoke("batch", "fetch")
    assert fetched.exit_code == 1 and "0 labelled, 3 failed" in fetched.stdout
    (reason,) = {r["reason"] for r in read_csv(ERRORS)}
    assert reason.startswith("batch job failed (too_many_requests")
    assert reason.endswith("; retry with --retry-failed")


def test_expired_job_keeps_the_answers_it_has_and_retry_sends_the_rest(
    server: FakeOpenAI, tmp_path: Path
) -> None:
    root = tmp_path / "in"
    folder(root, 4)
    make_image(root / "zz_bad.png", "cyan")  # sorted last: among the expired
    server.by_colour["cyan"] = Reply.error(
        400, "You uploaded an unsupported image.", "invalid_request_error", "invalid_image"
    )
    server.batch_outcome = "expired"  # the first half of the lines was answered
    assert invoke("tag", str(root), *MODEL, "--batch").exit_code == 0
    assert invoke("batch", "wait", "--poll", "0.01").exit_code == 0
    fetched = invoke("batch", "fetch")
    assert fetched.exit_code == 1 and "2 labelled, 3 failed" in fetched.stdout
    reasons = sorted(r["reason"] for r in read_csv(ERRORS))
    assert all("batch_expired" in reason for reason in reasons)
    server.batch_outcome = "completed"
    retry = invoke("tag", str(root), *MODEL, "--batch", "--retry-failed", "--json")
    assert json.loads(retry.stdout)["requests"] == 3
    assert invoke("batch", "wait", "--poll", "0.01").exit_code == 0
    assert invoke("batch", "fetch").exit_code == 1  # the bad image is refused for itself
    assert {Path(r["path"]).name: r["reason"] for r in read_csv(ERRORS)} == {
        "zz_bad.png": "batch request failed: 400 You uploaded an unsupported image."
    }
    assert len(read_csv(LABELS)) == 4


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda lines: [lines[0], lines[0]], "duplicate_custom_id"),
        (lambda lines: [{**lines[0], "url": "/v1/embeddings"}], "mismatched_endpoint"),
        (lambda lines: [{**lines[0], "custom_id": "x" * 65}], "invalid_value"),
        (
            lambda lines: [lines[0], {**lines[1], "body": {**lines[1]["body"], "model": "o"}}],
            "mismatched_model",
        ),
    ],
    ids=["duplicate id", "url", "long id", "two models"],
)
def test_the_fake_checks_input_files_as_openai_does(
    server: FakeOpenAI, tmp_path: Path, change, code: str
) -> None:
    body = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "json"}]}
    lines = [
        {"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}
        for i in range(2)
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in change(lines)))
    client = OpenAI(api_key=OPENAI_TEST_KEY, base_url=server.url, max_retries=0)
    with open(path, "rb") as handle:
        file = client.files.create(file=handle, purpose="batch")
    job = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert job.status == "validating"
    checked = client.batches.retrieve(job.id)
    assert checked.status == "failed" and checked.errors is not None
    assert [e.code for e in checked.errors.data or []] == [code]


def test_result_lines_the_sdk_would_refuse_are_failures_not_a_crash(
    server: FakeOpenAI, tmp_path: Path
) -> None:
    """Shapes seen in the wild: finish_reason null or newer than the SDK, created 1.5, an
    error that is a string, a line that is not JSON. Each is one failure row, the other
    lines are recorded, exit 1, and a second fetch neither crashes nor doubles a row."""
    folder(tmp_path / "in")
    server.batch_polls = 1
    assert invoke("tag", str(tmp_path / "in"), *MODEL, "--batch").exit_code == 0
    assert invoke("batch", "wait", "--poll", "0.01").exit_code == 0
    (job,) = server.batches.values()
    output = server.files[job["output_file_id"]]
    lines = [json.loads(line) for line in output["data"].decode().splitlines()]
    lines[0]["response"]["body"]["choices"][0]["finish_reason"] = None
    lines[1]["response"]["body"]["choices"][0]["finish_reason"] = "a_reason_from_2027"
    lines[2]["response"]["body"]["created"] = 1.5
    lines[3] = {"id": "x", "custom_id": lines[3]["custom_id"], "response": None, "error": "boom"}
    text = [json.dumps(line) for line in lines]
    text[4] = text[4][: len(text[4]) // 2]  # cut: not JSON
    output["data"] = ("\n".join(text) + "\n").encode()
    fetched = invoke("batch", "fetch")
    assert fetched.exit_code == 1, fetched.output
    assert "Traceback" not in fetched.output
    rows, failures = read_csv(LABELS), read_csv(Path("dataset/llm_labels.errors.csv"))
    assert len(rows) == 3 and len(failures) == 4  # created 1.5 is read; 7 images in all
    reasons = sorted(f["reason"].split(" (")[0].split(":")[0] for f in failures)
    assert reasons.count("answer not finished") == 2 and "batch request failed" in reasons
    again = invoke("batch", "fetch")
    assert again.exit_code == 0, again.output
    assert len(read_csv(LABELS)) == 3 and len(read_csv(Path("dataset/llm_labels.errors.csv"))) == 4
