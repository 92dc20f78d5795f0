"""The OpenAI-compatible provider end to end: the real `openai` SDK over HTTP against a
loopback fake of /v1/chat/completions, with every guarantee of `tag`."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emotag.cli import app
from emotag.emotions import EMOTIONS
from emotag.errors import AnswerError, FatalAPIError
from emotag.providers.openai_compat import map_api_error
from fakes.openai_api import OPENAI_TEST_KEY, FakeOpenAI, Reply, error_body, start
from helpers import make_image, read_csv

runner = CliRunner()
LABELS = Path("dataset/llm_labels.csv")
ERRORS = Path("dataset/llm_labels.errors.csv")


def tag(*args: str):
    return runner.invoke(app, ["tag", *args, "--provider", "openai", "-m", "gpt-4.1-mini"])


def folder(root: Path, count: int) -> dict[str, str]:
    truth = {}
    for i in range(count):
        emotion = EMOTIONS[i % 7]
        truth[str(make_image(root / f"img_{i:02d}.png", emotion, size=(40 + i, 40)))] = emotion
    return truth


def labels() -> dict[str, str]:
    return {r["path"]: r["emotion"] for r in read_csv(LABELS)}


def test_twenty_images_labelled_with_a_json_schema_and_no_gemini_key(
    server: FakeOpenAI, tmp_path: Path
) -> None:
    truth = folder(tmp_path / "in", 20)
    result = tag(str(tmp_path / "in"), "--json")
    assert result.exit_code == 0, result.output
    assert labels() == truth
    formats = [s.body["response_format"] for s in server.requests()]
    assert len(formats) == 20
    assert all(f["type"] == "json_schema" and f["json_schema"]["strict"] for f in formats)
    first = server.requests()[0].body
    image = first["messages"][0]["content"][1]["image_url"]
    assert image["url"].startswith("data:image/jpeg;base64,") and image["detail"] == "low"
    assert first["messages"][0]["content"][0]["text"].startswith("You are an expert annotator")
    rows = read_csv(LABELS)
    assert {r["model"] for r in rows} == {"gpt-4.1-mini"}
    assert {r["confidence_source"] for r in rows} == {"logprobs"}
    again = tag(str(tmp_path / "in"), "--json")  # resume: nothing paid twice
    assert json.loads(again.stdout)["requests"] == 0 and len(server.requests()) == 20


def test_votes_use_n_in_one_request(server: FakeOpenAI, tmp_path: Path) -> None:
    folder(tmp_path / "in", 6)
    result = tag(str(tmp_path / "in"), "--votes", "3", "--json")
    assert result.exit_code == 0, result.output
    assert len(server.requests()) == 6 and {s.body["n"] for s in server.requests()} == {3}
    assert all(r["votes"].endswith(":3") for r in read_csv(LABELS))


def test_a_server_without_strict_schemas_falls_back_once_and_remembers(
    server: FakeOpenAI, tmp_path: Path
) -> None:
    server.formats = ("json_object", "text")
    folder(tmp_path / "a", 8)
    first = tag(str(tmp_path / "a"), "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["refused_settings"] == 1
    assert [s.body.get("response_format", {}).get("type") for s in server.requests()][1:] == [
        "json_object"
    ] * 8
    folder(tmp_path / "b", 3)
    (tmp_path / "b" / "img_00.png").unlink()  # other bytes than folder a holds
    make_image(tmp_path / "b" / "extra.png", "sad", size=(77, 33))
    second = tag(str(tmp_path / "b"), "--json")
    assert json.loads(second.stdout)["refused_settings"] == 0


def test_a_reasoning_model_without_max_tokens_or_temperature_is_learned(
    server: FakeOpenAI, tmp_path: Path
) -> None:
    """The cap goes as max_completion_tokens (max_tokens is deprecated in OpenAI's spec
    and refused by reasoning models): only the temperature is refused, once."""
    server.unsupported = {"max_tokens", "temperature"}
    truth = folder(tmp_path / "in", 6)
    result = tag(str(tmp_path / "in"), "--json")
    assert result.exit_code == 0, result.output
    assert labels() == truth and json.loads(result.stdout)["refused_settings"] == 1
    assert all("max_tokens" not in s.body for s in server.requests())
    assert all(s.body["max_completion_tokens"] == 512 for s in server.requests())


def test_an_older_server_without_max_completion_tokens_gets_max_tokens(
    server: FakeOpenAI, tmp_path: Path
) -> None:
    server.unsupported = {"max_completion_tokens"}
    truth = folder(tmp_path / "in", 6)
    result = tag(str(tmp_path / "in"), "--json")
    assert result.exit_code == 0, result.output
    assert labels() == truth and json.loads(result.stdout)["refused_settings"] == 1
    answered = server.requests()[1:]
    assert answered and all(s.body.get("max_tokens") == 512 for s in answered)
    assert all("max_completion_tokens" not in s.body for s in answered)


def test_a_plain_text_server_is_parsed_strictly(server: FakeOpenAI, tmp_path: Path) -> None:
    """A bare label is a label; a sentence is not, even one that names a single label
    ("The face looks Happy." could as well be "does not look happy")."""
    server.formats = ("text",)
    server.logprobs = False
    truth = folder(tmp_path / "in", 7)
    result = tag(str(tmp_path / "in"), "--json")
    assert result.exit_code == 0, result.output
    assert labels() == truth
    assert json.loads(result.stdout)["refused_settings"] == 3  # schema, json_object, logprobs
    server.chatty = True
    chatty = tag(str(tmp_path / "in"), "--json", "--force")
    assert chatty.exit_code == 1
    reasons = {
        row["reason"].split(":")[0] for row in read_csv(Path("dataset/llm_labels.errors.csv"))
    }
    assert reasons == {"a sentence, not a label"}


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        pytest.param(lambda s: setattr(s, "api_key", "other"), "rejected the key", id="401"),
        pytest.param(None, "Model 'no-such-model' was not found", id="404"),
    ],
)
def test_fatal_answers_stop_in_one_line(
    server: FakeOpenAI, tmp_path: Path, setup, message: str
) -> None:
    folder(tmp_path / "in", 10)
    if setup is not None:
        setup(server)
    model = "no-such-model" if setup is None else "gpt-4.1-mini"
    result = runner.invoke(app, ["tag", str(tmp_path / "in"), "--provider", "openai", "-m", model])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert OPENAI_TEST_KEY not in result.output and "Traceback" not in result.output
    assert len(server.requests()) == 1


def test_throttling_errors_and_refusals(server: FakeOpenAI, tmp_path: Path) -> None:
    make_image(tmp_path / "in" / "slow.png", "happy")
    make_image(tmp_path / "in" / "flaky.png", "sad")
    make_image(tmp_path / "in" / "refused.png", "cyan")
    make_image(tmp_path / "in" / "filtered.png", "black")
    throttled = Reply.error(429, "Rate limit reached", "requests", "rate_limit_exceeded")
    server.by_colour.update(
        happy=[Reply(429, throttled.body, {"retry-after": "0.3"})] * 3,
        sad=[Reply.error(500, "boom", "server_error")] * 2,
        cyan=Reply(refusal="I can't help with identifying people."),
        black=Reply(finish="content_filter"),
    )
    result = tag(str(tmp_path / "in"), "--attempts", "3", "--json")
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["throttled"] == 3 and summary["labelled"] == 2
    reasons = {Path(r["path"]).name: r["reason"] for r in read_csv(ERRORS)}
    assert reasons["refused.png"].startswith("refused by the model: I can't help")
    assert reasons["filtered.png"] == "answer blocked by the content filter"


def test_a_local_server_needs_no_key_and_its_model_name_is_recorded(
    server: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    server.api_key = None
    server.reported_model = "qwen2.5vl:7b-q4_K_M"
    folder(tmp_path / "in", 4)
    result = runner.invoke(
        app, ["tag", str(tmp_path / "in"), "--provider", "openai", "-m", "qwen2.5vl:7b", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert {r["model"] for r in read_csv(LABELS)} == {"qwen2.5vl:7b-q4_K_M"}
    again = runner.invoke(
        app, ["tag", str(tmp_path / "in"), "--provider", "openai", "-m", "qwen2.5vl:7b", "--json"]
    )
    assert json.loads(again.stdout)["requests"] == 0  # the reported name counts as done


def test_provider_from_the_environment_and_key_status(
    server: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMOTAG_PROVIDER", "openai")
    folder(tmp_path / "in", 2)
    result = runner.invoke(app, ["tag", str(tmp_path / "in"), "-m", "gpt-4.1-mini"])
    assert result.exit_code == 0, result.output
    status = runner.invoke(app, ["key", "status", "--provider", "openai"])
    assert status.exit_code == 0 and OPENAI_TEST_KEY not in status.stdout
    host = server.url.removeprefix("http://").removesuffix("/v1")
    assert f"{host} (OPENAI_BASE_URL={server.url}): the key from the environment" in status.stdout


@pytest.mark.parametrize(
    ("env_url", "args"),
    [
        pytest.param(True, ["--model", "gpt-4.1-mini"], id="openai"),
        pytest.param(True, ["--model", "qwen2.5vl:7b"], id="ollama"),
        pytest.param(
            False, ["--base-url", "URL", "--model", "Qwen/Qwen2.5-VL-7B-Instruct"], id="vllm"
        ),
        pytest.param(
            False, ["--base-url", "URL", "--model", "qwen2.5-vl-7b-instruct"], id="lmstudio"
        ),
    ],
)
def test_the_readme_examples(
    server: FakeOpenAI,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    env_url: bool,
    args: list[str],
) -> None:
    # The README's commands, with the fake standing in for each server.
    if not env_url:
        monkeypatch.delenv("OPENAI_BASE_URL")
    if "--model" in args and args[-1] != "gpt-4.1-mini":
        monkeypatch.delenv("OPENAI_API_KEY")  # local servers: no key
        server.api_key = None
    truth = folder(tmp_path / "photos", 3)
    argv = [server.url if a == "URL" else a for a in args]
    result = runner.invoke(app, ["tag", str(tmp_path / "photos"), "--provider", "openai", *argv])
    assert result.exit_code == 0, result.output
    assert labels() == truth
    assert {s.body["model"] for s in server.requests()} == {args[-1]}


@pytest.mark.slow
def test_an_unreachable_server_stops_the_run_and_names_it(
    server: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    folder(tmp_path / "in", 20)
    result = tag(str(tmp_path / "in"))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: Cannot reach the OpenAI-compatible API at 127.0.0.1:9")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not ERRORS.exists() or read_csv(ERRORS) == []  # nobody blamed


def test_an_account_whose_credit_runs_out_stops_at_once_and_keeps_what_was_paid(
    server: FakeOpenAI, tmp_path: Path
) -> None:
    folder(tmp_path / "in", 40)
    server.credit = 12
    # A short --max-wait: were insufficient_quota taken for throttling, the run would end
    # "throttled" after 20 s instead of naming the account.
    result = tag(str(tmp_path / "in"), "--max-wait", "20")
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and "credit" in line and "Billing" in line
    assert "12 label(s) saved" in line
    assert len(read_csv(LABELS)) == 12
    assert not ERRORS.exists() or read_csv(ERRORS) == []  # no image blamed
    refused = len(server.requests()) - 12
    assert 1 <= refused <= 16  # the requests in flight at the stop, then none


@pytest.mark.parametrize("remembered", [False, True], ids=["first-run", "settings-remembered"])
def test_a_model_that_takes_no_images_stops_the_run_and_blames_none(
    server: FakeOpenAI, tmp_path: Path, remembered: bool
) -> None:
    if remembered:  # settings known: the first wave goes out 16 at once
        folder(tmp_path / "before", 2)
        assert tag(str(tmp_path / "before"), "-o", "before.csv").exit_code == 0
    server.vision = False
    sent = len(server.requests())
    folder(tmp_path / "in", 20)
    result = tag(str(tmp_path / "in"))
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and "takes no images" in line and "--model" in line
    assert not ERRORS.exists() or read_csv(ERRORS) == []
    assert not LABELS.exists() or read_csv(LABELS) == []
    assert 1 <= len(server.requests()) - sent <= (16 if remembered else 1)


def test_an_unexplained_refusal_stops_before_any_answer_and_costs_one_image_after(
    server: FakeOpenAI, tmp_path: Path
) -> None:
    odd = Reply.error(400, "Something about this request is off.", "invalid_request_error")
    server.by_colour["cyan"] = [odd] * 20
    make_image(tmp_path / "first" / "a.png", "cyan")
    stopped = tag(str(tmp_path / "first"), "-o", "first.csv")
    assert stopped.exit_code == 2 and "before answering any" in stopped.stderr
    assert not Path("first.errors.csv").exists() or read_csv(Path("first.errors.csv")) == []
    truth = folder(tmp_path / "in", 30)
    make_image(tmp_path / "in" / "zz.png", "cyan")  # last in order: after the first answer
    result = tag(str(tmp_path / "in"))
    assert result.exit_code == 1, result.output
    assert labels() == truth
    assert [r["reason"] for r in read_csv(ERRORS)] == [
        "request rejected: 400 Something about this request is off."
    ]


@pytest.mark.parametrize("header", ["retry-after", "x-ratelimit-reset-requests"])
def test_rate_limits_wait_as_the_server_says_and_cost_no_attempt(
    server: FakeOpenAI, tmp_path: Path, header: str
) -> None:
    truth = folder(tmp_path / "in", 6)
    server.by_colour["happy"] = [Reply.rate_limited(0.2, header)] * 3
    result = tag(str(tmp_path / "in"), "--attempts", "2", "--json")
    assert result.exit_code == 0, result.output  # three 429s, two attempts: none spent
    assert labels() == truth and json.loads(result.stdout)["throttled"] == 3
    happy = [s.time for s in server.requests() if s.colour == "happy"]
    assert len(happy) == 4
    gaps = [later - earlier for earlier, later in itertools.pairwise(happy)]
    # As long as the server said, not the 1, 2, 4 s of a back-off that ignores it.
    assert all(0.2 <= gap < 0.8 for gap in gaps), gaps


@pytest.mark.parametrize(
    ("status", "body", "kind", "words"),
    [
        pytest.param(
            403,
            error_body(
                "Country, region, or territory not supported",
                "request_forbidden",
                None,
                "unsupported_country_region_territory",
            ),
            FatalAPIError,
            "country or region",
            id="region",
        ),
        pytest.param(
            400,
            error_body(
                "Billing hard limit has been reached",
                "invalid_request_error",
                None,
                "billing_hard_limit_reached",
            ),
            FatalAPIError,
            "credit",
            id="spend-limit",
        ),
        pytest.param(
            400,
            error_body(
                "You uploaded an unsupported image. Please make sure your image is valid.",
                "invalid_request_error",
                None,
                "invalid_image_format",
            ),
            AnswerError,
            "image refused",
            id="bad-image",
        ),
        pytest.param(
            400,
            error_body(
                "'messages' must contain the word 'json' in some form, to use "
                "'response_format' of type 'json_object'.",
                "invalid_request_error",
                "messages",
            ),
            FatalAPIError,
            "bug in emotag",
            id="json-word",
        ),
        pytest.param(
            400,
            error_body(
                "The decoder prompt (length 9000) is longer than the maximum model length",
                "BadRequestError",
            ),
            AnswerError,
            "request rejected",
            id="unexplained-after-answers",
        ),
    ],
)
def test_error_answers_are_sorted_by_what_they_are_about(
    status: int, body: dict, kind: type, words: str
) -> None:
    import httpx2 as httpx  # the HTTP client openai 3.x is built on
    import openai

    request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx.Response(status, json=body, request=request)
    error = openai.APIStatusError(body["error"]["message"], response=response, body=body["error"])
    mapped = map_api_error(error, "gpt-x", "api.openai.com", answered=True)
    assert type(mapped) is kind and words in str(mapped)


def test_a_key_goes_only_to_the_host_it_belongs_to(
    server: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memory_keyring
) -> None:
    # OPENAI_API_KEY is OpenAI's (here paired with OPENAI_BASE_URL, as the SDK pairs them).
    # A run against another endpoint must not carry it there.
    elsewhere = FakeOpenAI(api_key="FAKE-key-of-the-other-server-0123456789")
    stop = start(elsewhere)
    try:
        folder(tmp_path / "in", 3)
        argv = ["tag", str(tmp_path / "in"), "--provider", "openai", "--base-url", elsewhere.url]
        refused = runner.invoke(app, [*argv, "-m", "gpt-4.1-mini"])
        assert refused.exit_code == 2 and "rejected the key" in refused.stderr
        sent = {s.headers.get("authorization", "") for s in elsewhere.requests()}
        assert sent and all(OPENAI_TEST_KEY not in value for value in sent)
        stored = runner.invoke(
            app,
            ["key", "set", "--provider", "openai", "--base-url", elsewhere.url],
            input="FAKE-key-of-the-other-server-0123456789\n",
        )
        assert stored.exit_code == 0, stored.output
        status = runner.invoke(
            app, ["key", "status", "--provider", "openai", "--base-url", elsewhere.url]
        )
        host = elsewhere.url.removeprefix("http://").removesuffix("/v1")
        assert f"{host} (--base-url {elsewhere.url}): the key from the system keyring, for" in (
            status.stdout
        )
        assert "api.openai.com (openai's own host): the key from the environment" in status.stdout
        assert "FAKE-key-of-the-other" not in status.output and OPENAI_TEST_KEY not in status.output
        labelled = runner.invoke(app, [*argv, "-m", "gpt-4.1-mini"])
        assert labelled.exit_code == 0, labelled.output
        assert len(read_csv(LABELS)) == 3
        assert server.requests() == []  # the paired endpoint was never asked
    finally:
        stop()


def test_a_remote_endpoint_without_its_own_key_is_refused_before_sending(
    server: FakeOpenAI, tmp_path: Path
) -> None:
    folder(tmp_path / "in", 2)
    result = runner.invoke(
        app,
        [
            "tag",
            str(tmp_path / "in"),
            "--provider",
            "openai",
            "--base-url",
            "https://llm.example/v1",
        ],
    )
    assert result.exit_code == 2
    note, error = result.stderr.strip().splitlines()
    assert note == "Note: requests go to llm.example (from --base-url), not api.openai.com"
    assert error.startswith("Error: No key for llm.example: OPENAI_API_KEY is sent only")
    assert "--base-url" in error and server.requests() == []


def test_a_hang_costs_an_attempt_and_a_dropped_connection_none(
    server: FakeOpenAI, tmp_path: Path
) -> None:
    truth = folder(tmp_path / "in", 14)
    server.latency = 0.05
    server.by_colour.update(
        happy=[Reply(hang=30)],  # past --timeout: one attempt spent, then answered
        sad=[Reply(drop=True)] * 3,  # three drops with --attempts 2: free, or it fails
    )
    result = tag(str(tmp_path / "in"), "--timeout", "1", "--attempts", "2", "--json")
    assert result.exit_code == 0, result.output
    assert labels() == truth and (not ERRORS.exists() or read_csv(ERRORS) == [])
    assert json.loads(result.stdout)["retries"] >= 4
