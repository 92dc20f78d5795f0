"""Unit tests of reading replies and errors; the wire itself is covered end to end."""

from __future__ import annotations

import math
from typing import Any

import pytest
from google.genai import errors, types

from emotag.errors import AnswerError, FatalAPIError, QuotaSpent, Throttled, TransientAPIError
from emotag.providers.answers import Answer
from emotag.providers.gemini import (
    estimate_input_tokens,
    family,
    map_api_error,
    read_reply,
    retry_delay,
)


def read_response(payload: Any) -> Answer:
    return read_reply(payload)[0]


def candidate(text: str, **extra: object) -> dict:
    return {
        "content": {"parts": [{"text": text}], "role": "model"},
        "finishReason": "STOP",
        **extra,
    }


def test_read_response_label_tokens_and_confidence() -> None:
    logprobs = {
        "chosenCandidates": [
            {"token": '{"emotion": "', "logProbability": -0.01},
            {"token": "sur", "logProbability": -0.2},
            {"token": "prise", "logProbability": -0.1},
            {"token": '"}', "logProbability": 0.0},
        ]
    }
    answer = read_response(
        {
            "candidates": [candidate('{"emotion": "surprise"}', logprobsResult=logprobs)],
            "usageMetadata": {
                "promptTokenCount": 300,
                "candidatesTokenCount": 7,
                "thoughtsTokenCount": 2,
            },
        }
    )
    assert answer.emotion == "surprise"
    assert answer.confidence == pytest.approx(math.exp(-0.3))
    assert answer.confidence_source == "logprobs"
    assert (answer.input_tokens, answer.output_tokens) == (300, 9)


def test_read_response_without_logprobs_has_no_confidence() -> None:
    answer = read_response({"candidates": [candidate("neutral", avgLogprobs=-0.5)]})
    assert answer.confidence is None and answer.confidence_source == ""


def test_read_response_ignores_thought_parts() -> None:
    parts = [{"text": "maybe sad? no", "thought": True}, {"text": "happy"}]
    answer = read_response({"candidates": [{"content": {"parts": parts}, "finishReason": "STOP"}]})
    assert answer.emotion == "happy"


def test_read_response_reads_past_fields_newer_than_the_sdk() -> None:
    """The SDK's own response type refuses a field it does not know (extra="forbid"); the
    API adds fields when it likes, and every answer must still be read."""
    newer = {"candidates": [candidate("sad", groundingScore=0.4)], "serviceTier": "standard"}
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        types.GenerateContentResponse.model_validate(newer)
    assert read_response(newer).emotion == "sad"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ('{"candidates": [{"content', "unreadable answer: JSONDecodeError"),
        ({"candidates": "none"}, "unreadable answer: AttributeError"),
        (
            {"candidates": [candidate("happy")], "usageMetadata": {"promptTokenCount": "x"}},
            "unreadable answer: ValueError",
        ),
        ({"promptFeedback": {"blockReason": "SAFETY"}}, "blocked by the API: SAFETY"),
        ({}, "blocked by the API: no answer"),
        ({"candidates": [{"finishReason": "SAFETY"}]}, "answer blocked by the API: SAFETY"),
        ({"candidates": [candidate("contempt")]}, "off-list answer: contempt"),
        ({"candidates": [{"finishReason": "MAX_TOKENS"}]}, r"answer cut off \(MAX_TOKENS\)"),
        (
            {"candidates": [candidate('{"faces": "one", "emo', finishReason="MAX_TOKENS")]},
            r"answer cut off \(MAX_TOKENS\)",
        ),
    ],
)
def test_read_response_failures(payload: Any, message: str) -> None:
    with pytest.raises(AnswerError, match=message):
        read_response(payload)


def api_error(
    code: int, status: str, message: str = "", details: list | None = None
) -> errors.APIError:
    return errors.APIError(
        code,
        {"error": {"code": code, "status": status, "message": message, "details": details or []}},
    )


def test_retry_delay_is_read_from_retry_info() -> None:
    error = api_error(
        429,
        "RESOURCE_EXHAUSTED",
        details=[
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure"},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7.5s"},
        ],
    )
    mapped = map_api_error(error, "model", "m")
    assert isinstance(mapped, Throttled) and mapped.retry_after == 7.5 and mapped.code == 429
    assert retry_delay({"error": {"details": []}}) is None
    assert retry_delay("not json") is None


@pytest.mark.parametrize(
    ("code", "status", "message", "kind"),
    [
        (408, "DEADLINE_EXCEEDED", "", TransientAPIError),
        (500, "INTERNAL", "", TransientAPIError),
        (503, "UNAVAILABLE", "", TransientAPIError),
        (404, "NOT_FOUND", "", FatalAPIError),
        (403, "PERMISSION_DENIED", "", FatalAPIError),
        (400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", FatalAPIError),
        (400, "INVALID_ARGUMENT", "Unable to process input image.", AnswerError),
        (
            400,
            "FAILED_PRECONDITION",
            "User location is not supported for the API use.",
            FatalAPIError,
        ),
        (401, "UNAUTHENTICATED", "", FatalAPIError),
        (429, "RESOURCE_EXHAUSTED", "", Throttled),
    ],
)
def test_map_api_error_classes(code: int, status: str, message: str, kind: type) -> None:
    assert type(map_api_error(api_error(code, status, message), "model", "gemini-x")) is kind


def test_not_found_names_the_model_or_the_expired_batch_object() -> None:
    error = api_error(404, "NOT_FOUND")
    assert "gemini-1.5-flash" in str(map_api_error(error, "model", "gemini-1.5-flash"))
    job = str(map_api_error(error, "job", "batches/b7"))
    assert "batches/b7" in job and "48 hours" in job and "Model" not in job


def test_precondition_shows_the_apis_reason() -> None:
    error = api_error(400, "FAILED_PRECONDITION", "User location is not supported for the API use.")
    assert "User location is not supported" in str(map_api_error(error, "model", "m"))


def test_a_per_day_quota_is_fatal_and_named() -> None:
    violation = {
        "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
        "quotaValue": "20",
    }
    details = [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [violation]},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"},
    ]
    mapped = map_api_error(api_error(429, "RESOURCE_EXHAUSTED", "", details), "model", "gem-x")
    assert isinstance(mapped, QuotaSpent)
    mapped.saved = 20
    text = str(mapped)
    assert "daily request quota" in text and "gem-x" in text and "20 label(s) saved" in text
    assert "--batch" in text
    per_minute = dict(violation, quotaId="GenerateRequestsPerMinutePerProjectPerModel")
    details[0]["violations"] = [per_minute]
    minute = map_api_error(api_error(429, "RESOURCE_EXHAUSTED", "", details), "model", "m")
    assert isinstance(minute, Throttled) and minute.retry_after == 17


@pytest.mark.parametrize(
    ("model", "thinking", "room"),
    [
        ("gemini-2.0-flash", None, 64),
        ("gemini-2.5-flash", {"thinking_budget": 0}, 64),
        ("gemini-2.5-pro", {"thinking_budget": 128}, 1024),  # cannot turn thinking off
        ("gemini-3.5-flash-lite", {"thinking_level": "MINIMAL"}, 512),
        ("gemini-3-pro-preview", {"thinking_level": "LOW"}, 4096),  # no MINIMAL level
    ],
)
def test_family_leaves_room_for_thinking(model: str, thinking: dict | None, room: int) -> None:
    settings = family(model)
    assert settings.thinking == thinking and settings.max_output_tokens == room
    assert (settings.temperature is None) == model.startswith("gemini-3")


def test_token_estimates_follow_the_model_family() -> None:
    assert estimate_input_tokens("gemini-2.5-flash", "", 384, 300) == 258
    assert estimate_input_tokens("gemini-2.5-flash", "", 1536, 1536) == 258 * 4
    assert estimate_input_tokens("gemini-3.5-flash-lite", "x" * 40, 384, 384) == 280 + 10
