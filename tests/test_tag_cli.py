"""End to end: the real CLI, the real SDK, real HTTP to the loopback fake."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emotag.cli import app
from emotag.emotions import EMOTIONS
from fakes.gemini_api import LABEL_LOGPROB, TEST_KEY, FakeGemini, Reply
from helpers import make_image, read_csv

runner = CliRunner()


def run(*args: str) -> CliRunner.invoke:
    return runner.invoke(app, list(args))


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "dataset" / "random_expressions"
    for i, emotion in enumerate(EMOTIONS):
        make_image(root / f"img_{i}.png", emotion)
    make_image(root / "sub" / "deeper" / "x.JPG", "sad", format="JPEG")
    return root


def test_tag_labels_every_image_and_writes_default_csv(gemini: FakeGemini, dataset: Path) -> None:
    result = run("tag", str(dataset))
    assert result.exit_code == 0, result.output
    rows = read_csv(Path("dataset/llm_labels.csv"))
    assert list(rows[0])[:4] == ["filename", "path", "emotion", "confidence"]
    by_name = {r["filename"]: r for r in rows}
    assert len(rows) == 8
    for i, emotion in enumerate(EMOTIONS):
        row = by_name[f"img_{i}.png"]
        assert row["emotion"] == emotion
        assert row["path"] == str(dataset / f"img_{i}.png")
        assert float(row["confidence"]) == pytest.approx(math.exp(LABEL_LOGPROB), abs=1e-4)
        assert row["confidence_source"] == "logprobs"
        assert row["model"] == "gemini-3.5-flash-lite"
    assert by_name["x.JPG"]["emotion"] == "sad"
    assert gemini.count == 8


def test_tag_sends_a_schema_constrained_request_with_the_key_in_a_header(
    gemini: FakeGemini, dataset: Path
) -> None:
    make_image(dataset / "big.jpg", "angry", size=(900, 700), format="JPEG")
    assert run("tag", str(dataset), "--concurrency", "1").exit_code == 0
    seen = gemini.seen[0]
    assert seen.path.endswith("/models/gemini-3.5-flash-lite:generateContent")
    assert TEST_KEY not in seen.path
    assert seen.headers["x-goog-api-key"] == TEST_KEY
    config = seen.body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"]["properties"]["emotion"]["enum"] == list(EMOTIONS)
    assert "temperature" not in config  # Gemini 3: Google advises the default 1.0
    # The documented REST spelling, the same as in a batch line (the SDK's converters sent
    # thinking_level; proto JSON takes either).
    assert config["thinkingConfig"] == {"thinkingLevel": "MINIMAL"}
    assert config["maxOutputTokens"] == 512
    assert config["mediaResolution"] == "MEDIA_RESOLUTION_LOW"
    sizes = {x.image_size for x in gemini.seen}
    assert (384, 299) in sizes  # the 900x700 photo, shrunk to --max-side with its aspect
    assert all(max(size or (0, 0)) <= 384 for size in sizes)


def test_tag_rerun_resumes_without_paying_twice(gemini: FakeGemini, dataset: Path) -> None:
    assert run("tag", str(dataset)).exit_code == 0
    first = gemini.count
    make_image(dataset / "new.png", "fear", size=(50, 50))  # other bytes than img_4.png
    result = run("tag", str(dataset), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["skipped"] == 8 and summary["labelled"] == 1
    assert gemini.count == first + 1
    assert len(read_csv(Path("dataset/llm_labels.csv"))) == 9


def test_tag_force_relabels_without_duplicate_rows(gemini: FakeGemini, dataset: Path) -> None:
    assert run("tag", str(dataset)).exit_code == 0
    assert run("tag", str(dataset), "--force").exit_code == 0
    rows = read_csv(Path("dataset/llm_labels.csv"))
    assert gemini.count == 16
    assert len({r["path"] for r in rows}) == len(rows) == 8


def test_tag_other_model_relabels(gemini: FakeGemini, dataset: Path) -> None:
    assert run("tag", str(dataset)).exit_code == 0
    assert run("tag", str(dataset), "--model", "gemini-3.8-flash").exit_code == 0
    rows = read_csv(Path("dataset/llm_labels.csv"))
    assert {r["model"] for r in rows} == {"gemini-3.8-flash"}
    assert gemini.seen[-1].model == "gemini-3.8-flash"


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        pytest.param(Reply.cut_off(), "answer cut off (MAX_TOKENS)", id="max-tokens"),
        pytest.param(
            Reply.blocked_prompt("PROHIBITED_CONTENT"),
            "blocked by the API: PROHIBITED_CONTENT",
            id="blocked-prompt",
        ),
        pytest.param(
            Reply.finish("SAFETY"), "answer blocked by the API: SAFETY", id="safety-finish"
        ),
        pytest.param(
            Reply.error(400, "INVALID_ARGUMENT", "Unable to process input image."),
            "request rejected: 400",
            id="bad-image-400",
        ),
    ],
)
def test_tag_unusable_answers_go_to_the_errors_csv(
    gemini: FakeGemini, tmp_path: Path, reply: Reply, reason: str
) -> None:
    make_image(tmp_path / "in" / "good.png", "happy")
    make_image(tmp_path / "in" / "odd.png", "cyan")
    gemini.by_colour["cyan"] = reply
    result = run("tag", str(tmp_path / "in"))
    assert result.exit_code == 1, result.output
    labels = read_csv(Path("dataset/llm_labels.csv"))
    assert [r["filename"] for r in labels] == ["good.png"]
    errors = read_csv(Path("dataset/llm_labels.errors.csv"))
    assert [Path(e["path"]).name for e in errors] == ["odd.png"]
    assert errors[0]["reason"].startswith(reason)
    assert "errors.csv" in result.stderr


def test_tag_retries_transient_errors_honouring_retry_delay(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    make_image(tmp_path / "in" / "a.png", "angry")
    gemini.queue[:] = [
        Reply.error(429, "RESOURCE_EXHAUSTED", "quota", "1s"),
        Reply.error(500, "INTERNAL"),
        Reply.error(503, "UNAVAILABLE"),
    ]
    result = run("tag", str(tmp_path / "in"), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["retries"] == 3
    times = [s.time for s in gemini.seen]
    assert times[1] - times[0] >= 1.0  # waited for the server's retryDelay
    assert read_csv(Path("dataset/llm_labels.csv"))[0]["emotion"] == "angry"


def test_tag_gives_up_after_attempts_and_reports(gemini: FakeGemini, tmp_path: Path) -> None:
    make_image(tmp_path / "in" / "a.png", "angry")
    gemini.by_colour["angry"] = Reply.error(503, "UNAVAILABLE")
    result = run("tag", str(tmp_path / "in"), "--attempts", "2")
    assert result.exit_code == 1
    assert gemini.count == 2
    reason = read_csv(Path("dataset/llm_labels.errors.csv"))[0]["reason"]
    assert reason.startswith("gave up after 2 attempts: 503")


def test_tag_hanging_request_times_out_and_is_retried(gemini: FakeGemini, tmp_path: Path) -> None:
    make_image(tmp_path / "in" / "a.png", "fear")
    gemini.queue[:] = [Reply(hang=30)]
    result = run("tag", str(tmp_path / "in"), "--timeout", "1")
    assert result.exit_code == 0, result.output
    assert gemini.count == 2
    assert read_csv(Path("dataset/llm_labels.csv"))[0]["emotion"] == "fear"


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        pytest.param(
            lambda f: f.unknown_models.add("gemini-1.5-flash"),
            "Model 'gemini-1.5-flash' was not found",
            id="404-model",
        ),
        pytest.param(
            lambda f: setattr(f, "api_key", "other"),
            "The API rejected the key",
            id="400-bad-key",
        ),
        pytest.param(
            lambda f: f.queue.extend([Reply.error(403, "PERMISSION_DENIED")] * 50),
            "The API rejected the key",
            id="403",
        ),
        pytest.param(
            lambda f: f.queue.extend([Reply.error(401, "UNAUTHENTICATED")] * 50),
            "The API rejected the key",
            id="401",
        ),
        pytest.param(
            lambda f: f.queue.extend(
                [
                    Reply.error(
                        400,
                        "FAILED_PRECONDITION",
                        "User location is not supported for the API use.",
                    )
                ]
                * 50
            ),
            "User location is not supported for the API use.",
            id="400-region",
        ),
    ],
)
def test_tag_fatal_errors_stop_the_run_at_once(
    gemini: FakeGemini, dataset: Path, setup, message: str
) -> None:
    setup(gemini)
    result = run("tag", str(dataset), "--model", "gemini-1.5-flash")  # concurrency 16
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    # The first request goes alone until the settings are known: one, refused, then none.
    assert gemini.count + gemini.key_refusals == 1
    assert not Path("dataset/llm_labels.errors.csv").exists() or not read_csv(
        Path("dataset/llm_labels.errors.csv")
    )


def test_tag_logprobs_asked_for_and_refused_are_dropped_with_one_warning(
    gemini: FakeGemini, dataset: Path
) -> None:
    gemini.logprobs = "reject"
    result = run("tag", str(dataset), "--logprobs")
    assert result.exit_code == 0, result.output
    rows = read_csv(Path("dataset/llm_labels.csv"))
    assert all(r["confidence"] == "" and r["confidence_source"] == "" for r in rows)
    # One refused request, then every request goes without logprobs.
    assert gemini.count == 9
    assert result.stderr.count("does not accept the logprobs setting") == 1


def test_tag_no_key_is_one_clear_line(fake: FakeGemini, dataset: Path, monkeypatch) -> None:
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.url)
    result = run("tag", str(dataset))
    assert result.exit_code == 2
    assert "No API key found" in result.stderr and "emotag key set" in result.stderr
    assert fake.count == 0


def test_tag_missing_folder(gemini: FakeGemini) -> None:
    result = run("tag", "nope")
    assert result.exit_code == 2
    assert result.stderr.strip() == "Error: Folder not found: nope"


def test_tag_dry_run_sends_nothing_and_needs_no_key(
    fake: FakeGemini, dataset: Path, monkeypatch
) -> None:
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.url)
    (dataset / "copy.png").write_bytes((dataset / "img_0.png").read_bytes())
    (dataset / "broken.png").write_bytes(b"not an image")
    result = run("tag", str(dataset), "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["found"] == 10
    assert report["duplicates"] == 1
    assert report["unreadable"] == 1
    assert report["to_send"] == 8
    assert report["input_tokens"] > 8 * 258
    assert fake.count == 0
    assert not Path("dataset/llm_labels.csv").exists()


def test_tag_exact_duplicates_are_sent_once(gemini: FakeGemini, tmp_path: Path) -> None:
    for i, emotion in enumerate(EMOTIONS):
        make_image(tmp_path / "in" / "a" / f"{i}.png", emotion)
        (tmp_path / "in" / "b").mkdir(parents=True, exist_ok=True)
        (tmp_path / "in" / "b" / f"{i}.png").write_bytes(
            (tmp_path / "in" / "a" / f"{i}.png").read_bytes()
        )
    result = run("tag", str(tmp_path / "in"))
    assert result.exit_code == 0, result.output
    rows = read_csv(Path("dataset/llm_labels.csv"))
    assert len(rows) == 14 and gemini.count == 7
    copies = [r for r in rows if r["duplicate_of"]]
    assert len(copies) == 7
    assert all(Path(r["duplicate_of"]).name == r["filename"] for r in copies)


def test_tag_moved_folder_costs_nothing(gemini: FakeGemini, dataset: Path, tmp_path: Path) -> None:
    assert run("tag", str(dataset)).exit_code == 0
    moved = tmp_path / "moved"
    dataset.rename(moved)
    before = gemini.count
    assert run("tag", str(moved)).exit_code == 0
    assert gemini.count == before
    rows = read_csv(Path("dataset/llm_labels.csv"))
    assert sum(1 for r in rows if r["path"].startswith(str(moved))) == 8


def test_tag_retry_failed_only_retries_the_errors(gemini: FakeGemini, tmp_path: Path) -> None:
    make_image(tmp_path / "in" / "good.png", "happy")
    make_image(tmp_path / "in" / "flaky.png", "sad")
    gemini.by_colour["sad"] = [Reply.error(503, "UNAVAILABLE")] * 2
    assert run("tag", str(tmp_path / "in"), "--attempts", "2").exit_code == 1
    result = run("tag", str(tmp_path / "in"), "--retry-failed", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["found"] == 1
    assert len(read_csv(Path("dataset/llm_labels.csv"))) == 2
    assert read_csv(Path("dataset/llm_labels.errors.csv")) == []


def test_tag_custom_output_and_errors_paths(
    gemini: FakeGemini, dataset: Path, tmp_path: Path
) -> None:
    make_image(dataset / "odd.png", "cyan")
    gemini.by_colour["cyan"] = Reply.cut_off()
    out = tmp_path / "o" / "labels.csv"
    errs = tmp_path / "e" / "fails.csv"
    result = run("tag", str(dataset), "-o", str(out), "--errors", str(errs))
    assert result.exit_code == 1
    assert len(read_csv(out)) == 8 and len(read_csv(errs)) == 1


def test_tag_prompt_file_is_sent(gemini: FakeGemini, dataset: Path, tmp_path: Path) -> None:
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Judge the face. One word.\n")
    assert run("tag", str(dataset), "--prompt-file", str(prompt)).exit_code == 0
    parts = gemini.seen[0].body["contents"][0]["parts"]
    assert parts[1]["text"] == "Judge the face. One word."


def test_tag_quiet_non_terminal_output_has_no_control_characters(
    gemini: FakeGemini, dataset: Path
) -> None:
    result = run("tag", str(dataset))
    assert "\x1b" not in result.output
    assert "labelled" in result.stdout
    quiet = run("tag", str(dataset), "--quiet", "--force")
    assert quiet.exit_code == 0 and quiet.stdout == ""


def test_tag_settings_come_from_env_and_dotenv(
    gemini: FakeGemini, dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path(".env").write_text("EMOTAG_MODEL=gemini-3.8-flash\nEMOTAG_CONCURRENCY=2\n")
    gemini.latency = 0.1  # requests overlap: the number in flight is the concurrency
    assert run("tag", str(dataset)).exit_code == 0
    assert {s.model for s in gemini.seen} == {"gemini-3.8-flash"}
    assert gemini.max_in_flight == 2
    monkeypatch.setenv("EMOTAG_CONCURRENCY", "2.5")
    bad = run("tag", str(dataset))
    assert bad.exit_code == 2 and "EMOTAG_CONCURRENCY must be a whole number" in bad.stderr
    monkeypatch.setenv("EMOTAG_CONCURRENCY", "4")
    monkeypatch.setenv("EMOTAG_RPM", "fast")
    worse = run("tag", str(dataset))
    assert worse.exit_code == 2 and "EMOTAG_RPM must be a number" in worse.stderr


@pytest.mark.parametrize("setting", ["thinkingConfig", "mediaResolution"])
def test_tag_a_rejected_setting_is_dropped_once_quietly(
    gemini: FakeGemini, dataset: Path, setting: str
) -> None:
    gemini.rejected_settings.add(setting)
    result = run("tag", str(dataset), "--json")  # concurrency 16
    assert result.exit_code == 0, result.output
    assert len(read_csv(Path("dataset/llm_labels.csv"))) == 8
    assert gemini.count == 9  # one refusal, then every request without the setting
    assert all(setting not in s.body["generationConfig"] for s in gemini.seen[1:])
    assert json.loads(result.stdout)["refused_settings"] == 1
    assert "does not accept" not in result.stderr  # not asked for by the user


def test_tag_summary_names_the_files_it_wrote(gemini: FakeGemini, dataset: Path) -> None:
    labels = Path("dataset/llm_labels.csv").absolute()
    errors = Path("dataset/llm_labels.errors.csv").absolute()
    clean = run("tag", str(dataset))
    assert clean.exit_code == 0, clean.output
    squeezed = "".join(clean.stdout.split())  # the table may wrap a long path
    assert f"Labels:{labels}" in squeezed and "Errors:" not in squeezed
    (dataset / "broken.png").write_bytes(b"not a png")
    failed = run("tag", str(dataset))
    assert failed.exit_code == 1
    assert f"Errors:{errors}(1row(s))" in "".join(failed.stdout.split())


def test_brackets_in_names_and_messages_are_shown_as_written(gemini: FakeGemini) -> None:
    # Rich reads "[...]" as markup; a path or a reason must never lose its brackets.
    missing = run("tag", "photos[red]/2024")
    assert missing.exit_code == 2 and "photos[red]/2024" in missing.stderr


def test_a_request_refused_for_its_shape_stops_at_once_and_blames_no_image(
    gemini: FakeGemini, tmp_path: Path
) -> None:
    """What Google's front end says to a field it does not know: before any answer it is
    the request's shape, the same for every image (40 images: 1 request, 0 error rows)."""
    for i in range(40):
        make_image(tmp_path / "in" / f"{i}.png", EMOTIONS[i % 7], size=(30 + i, 30))
    unknown = (
        'Invalid JSON payload received. Unknown name "responseJsonSchema" at '
        "'generation_config': Cannot find field."
    )
    gemini.queue[:] = [Reply.error(400, "INVALID_ARGUMENT", unknown)] * 40
    result = run("tag", str(tmp_path / "in"))
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "refused the request before answering any" in line and "no image was blamed" in line
    assert gemini.count == 1
    assert not Path("dataset/llm_labels.errors.csv").exists() or not read_csv(
        Path("dataset/llm_labels.errors.csv")
    )
