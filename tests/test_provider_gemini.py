"""Unit tests of reading replies and errors; the wire itself is covered end to end."""

from __future__ import annotations

import math

import pytest
from google.genai import errors, types

from emotag.errors import AnswerError, FatalAPIError
from emotag.providers.gemini import (
    TransientAPIError,
    estimate_input_tokens,
    map_api_error,
    read_response,
    retry_delay,
)


def reply(payload: dict) -> types.GenerateContentResponse:
    return types.GenerateContentResponse.model_validate(payload)


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
        reply(
            {
                "candidates": [candidate('{"emotion": "surprise"}', logprobsResult=logprobs)],
                "usageMetadata": {
                    "promptTokenCount": 300,
                    "candidatesTokenCount": 7,
                    "thoughtsTokenCount": 2,
                },
            }
        )
    )
    assert answer.emotion == "surprise"
    assert answer.confidence == pytest.approx(math.exp(-0.3))
    assert answer.confidence_source == "logprobs"
    assert (answer.input_tokens, answer.output_tokens) == (300, 9)


def test_read_response_without_logprobs_has_no_confidence() -> None:
    answer = read_response(reply({"candidates": [candidate("neutral", avgLogprobs=-0.5)]}))
    assert answer.confidence is None and answer.confidence_source == ""


def test_read_response_ignores_thought_parts() -> None:
    parts = [{"text": "maybe sad? no", "thought": True}, {"text": "happy"}]
    answer = read_response(
        reply({"candidates": [{"content": {"parts": parts}, "finishReason": "STOP"}]})
    )
    assert answer.emotion == "happy"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"promptFeedback": {"blockReason": "SAFETY"}}, "blocked by the API: SAFETY"),
        ({}, "blocked by the API: no answer"),
        ({"candidates": [{"finishReason": "SAFETY"}]}, "answer blocked by the API: SAFETY"),
        ({"candidates": [candidate("contempt")]}, "off-list answer: contempt"),
        ({"candidates": [{"finishReason": "MAX_TOKENS"}]}, "off-list answer"),
    ],
)
def test_read_response_failures(payload: dict, message: str) -> None:
    with pytest.raises(AnswerError, match=message):
        read_response(reply(payload))


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
    mapped = map_api_error(error, "m")
    assert (
        isinstance(mapped, TransientAPIError) and mapped.retry_after == 7.5 and mapped.code == 429
    )
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
    ],
)
def test_map_api_error(code: int, status: str, message: str, kind: type) -> None:
    assert type(map_api_error(api_error(code, status, message), "gemini-x")) is kind


def test_not_found_names_the_model() -> None:
    assert "gemini-1.5-flash" in str(map_api_error(api_error(404, "NOT_FOUND"), "gemini-1.5-flash"))


def test_token_estimates_follow_the_model_family() -> None:
    assert estimate_input_tokens("gemini-2.5-flash", "", 384, 300) == 258
    assert estimate_input_tokens("gemini-2.5-flash", "", 1536, 1536) == 258 * 4
    assert estimate_input_tokens("gemini-3.5-flash-lite", "x" * 40, 384, 384) == 280 + 10
