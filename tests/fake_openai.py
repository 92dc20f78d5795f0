"""A loopback fake of an OpenAI-compatible `POST /v1/chat/completions`, for end-to-end tests
driven by the real `openai` SDK over HTTP.

Like the Gemini fake it decodes the image (a data URI) and answers by its colour. It is as
strict as OpenAI: the bearer key, 400 for an unknown field, strict JSON schemas checked by
OpenAI's rules (a name, closed objects, every property required), `json_object` only with
the word "json" in the messages, errors in OpenAI's shape (`message`, `type`, `param`,
`code`). It can act as a server without strict schema (or any JSON mode), a text-only
model, an account whose credit runs out, and scripts 401, 404, 429 with its wait headers,
500, hangs, dropped connections, refusals and content-filter finishes without text.
"""

from __future__ import annotations

import json
import random
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from fake_gemini import COLOURS, _decode, _Server, nearest_colour, seen_label

OPENAI_TEST_KEY = "FAKE-openai-test-key-abcdefghijklmnopqrstuvwxyz"
ROUTE = "/v1/chat/completions"
DATA_URI = re.compile(r"^data:image/[a-z]+;base64,(?P<data>.+)$", re.DOTALL)
LABEL_LOGPROB = -0.2
# The request fields OpenAI's Chat Completions API takes; any other is a 400.
KNOWN_FIELDS = frozenset(
    {
        "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p",
        "n", "stream", "stream_options", "stop", "presence_penalty", "frequency_penalty",
        "logit_bias", "logprobs", "top_logprobs", "response_format", "seed", "tools",
        "tool_choice", "parallel_tool_calls", "user", "service_tier", "store", "metadata",
        "reasoning_effort", "modalities", "audio", "prediction", "verbosity",
        "web_search_options", "prompt_cache_key", "safety_identifier",
    }
)  # fmt: skip
# JSON Schema keywords that strict structured outputs accept.
STRICT_KEYWORDS = frozenset(
    {"type", "properties", "required", "additionalProperties", "enum", "items", "anyOf",
     "description", "$defs", "$ref", "const", "title"}
)  # fmt: skip
QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, read the docs: "
    "https://platform.openai.com/docs/guides/error-codes/api-errors."
)
NO_VISION_MESSAGE = "Invalid content type. image_url is only supported by certain models."


def error_body(
    message: str, kind: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """OpenAI's error shape: every field present, null where it has no value."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


@dataclass(frozen=True)
class Scripted:
    """A reply other than the colour's label."""

    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    refusal: str | None = None
    finish: str = "stop"
    hang: float = 0.0  # seconds before answering (past the client's timeout: a hang)
    drop: bool = False  # close the connection without an answer

    @staticmethod
    def error(
        status: int, message: str, kind: str, code: str | None = None, param: str | None = None
    ) -> Scripted:
        return Scripted(status, error_body(message, kind, param, code))

    @staticmethod
    def rate_limited(seconds: float, header: str = "retry-after") -> Scripted:
        """429 rate_limit_exceeded as OpenAI sends it, the wait in `header`."""
        wait = f"{seconds:g}" if header == "retry-after" else f"{seconds:g}s"
        message = (
            "Rate limit reached for gpt-4.1-mini in organization org-fake on requests per min "
            f"(RPM): Limit 3, Used 3, Requested 1. Please try again in {seconds:g}s."
        )
        return Scripted(
            429, error_body(message, "requests", None, "rate_limit_exceeded"), {header: wait}
        )

    @staticmethod
    def no_credit() -> Scripted:
        return Scripted.error(429, QUOTA_MESSAGE, "insufficient_quota", "insufficient_quota")


@dataclass
class Seen:
    body: dict[str, Any]
    headers: dict[str, str]
    colour: str | None
    time: float = field(default_factory=time.monotonic)


@dataclass(slots=True)  # a test that sets a field the fake lacks fails at once
class FakeOpenAI:
    api_key: str | None = OPENAI_TEST_KEY  # None: a local server that takes any key
    formats: tuple[str, ...] = ("json_schema", "json_object", "text")  # what it supports
    logprobs: bool = True
    multiple_choices: bool = True
    vision: bool = True  # False: a text-only model, which answers 400 to any image
    credit: int | None = None  # answers the account can pay for; then insufficient_quota
    latency: float = 0.0
    reported_model: str | None = None  # the name answers come back under; None: as asked
    chatty: bool = False  # in text mode, answer a sentence rather than a bare word
    unsupported: set[str] = field(default_factory=set)  # request fields it answers 400 to
    by_colour: dict[str, Scripted | list[Scripted]] = field(default_factory=dict)
    ambiguous_happy: float = 0.6
    seen: list[Seen] = field(default_factory=list)
    answered: int = 0
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(99)

    def requests(self) -> list[Seen]:
        return list(self.seen)

    def reply(self, seen: Seen, headers: dict[str, str]) -> Scripted:
        """What to answer one request: a status and body, maybe after a hang, or a drop."""
        body = seen.body
        refused = self._refusal(body, headers)
        if refused is not None:
            return refused
        with self._lock:
            scripted = self.by_colour.get(seen.colour or "")
            if isinstance(scripted, list):
                scripted = scripted.pop(0) if scripted else None
            if scripted is None or scripted.status == 200:
                if self.credit is not None and self.answered >= self.credit:
                    scripted = Scripted.no_credit()
                else:
                    self.answered += 1
        if scripted is not None and (scripted.status != 200 or scripted.drop):
            return scripted
        form = (body.get("response_format") or {"type": "text"})["type"]
        choices = [
            self._choice(i, seen, form, body, scripted) for i in range(int(body.get("n", 1)))
        ]
        return Scripted(
            200,
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 0,
                "model": self.reported_model or body["model"],
                "choices": choices,
                "usage": {"prompt_tokens": 120, "completion_tokens": 12, "total_tokens": 132},
            },
            hang=scripted.hang if scripted is not None else 0.0,
        )

    def _refusal(self, body: dict[str, Any], headers: dict[str, str]) -> Scripted | None:
        """What the real API answers a request it will not take, in its own words."""
        auth = headers.get("authorization", "")
        if self.api_key is not None and auth != f"Bearer {self.api_key}":
            shown = auth.removeprefix("Bearer ")
            message = (
                f"Incorrect API key provided: {shown[:3]}***{shown[-4:]}. You can find your "
                "API key at https://platform.openai.com/account/api-keys."
            )
            return Scripted.error(401, message, "invalid_request_error", "invalid_api_key")
        for name in sorted(set(body) - KNOWN_FIELDS):
            message = f"Unrecognized request argument supplied: {name}"
            return Scripted.error(400, message, "invalid_request_error")
        if body.get("model") == "no-such-model":
            message = f"The model `{body['model']}` does not exist or you do not have access to it."
            return Scripted.error(404, message, "invalid_request_error", "model_not_found")
        for name in sorted(self.unsupported & set(body)):
            message = f"Unsupported parameter: '{name}' is not supported with this model."
            return Scripted.error(
                400, message, "invalid_request_error", "unsupported_parameter", name
            )
        if not self.vision and _has_image(body):
            return Scripted.error(
                400,
                NO_VISION_MESSAGE,
                "invalid_request_error",
                None,
                "messages.[0].content.[1].type",
            )
        form = body.get("response_format") or {"type": "text"}
        if form.get("type") not in self.formats:
            message = f"response_format {form.get('type')} is not supported by this server"
            return Scripted.error(400, message, "invalid_request_error", None, "response_format")
        problem = _format_problem(form, body)
        if problem is not None:
            return Scripted.error(400, problem[1], "invalid_request_error", None, problem[0])
        if body.get("logprobs") and not self.logprobs:
            message = "logprobs are not supported by this server"
            return Scripted.error(400, message, "invalid_request_error", None, "logprobs")
        if int(body.get("n", 1)) > 1 and not self.multiple_choices:
            message = "'n' must be 1 for this model"
            return Scripted.error(400, message, "invalid_request_error", None, "n")
        return None

    def _choice(
        self, index: int, seen: Seen, form: str, body: dict[str, Any], scripted: Scripted | None
    ) -> dict[str, Any]:
        with self._lock:
            label = seen_label(seen.colour, self._rng, self.ambiguous_happy)
        if form == "text":
            text = f"The face looks {label.title()}." if self.chatty else label
        else:
            text = json.dumps({"faces": "one", "emotion": label})
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
        finish = "stop"
        if scripted is not None:
            finish = scripted.finish
            if scripted.refusal is not None:
                message = {"role": "assistant", "content": None, "refusal": scripted.refusal}
            elif finish == "content_filter":
                message = {"role": "assistant", "content": None, "refusal": None}
        choice: dict[str, Any] = {"index": index, "message": message, "finish_reason": finish}
        if body.get("logprobs") and message["content"]:
            head, _, tail = text.rpartition(
                label.title() if self.chatty and form == "text" else label
            )
            pieces = [
                (head, 0.0),
                (text[len(head) : len(text) - len(tail)], LABEL_LOGPROB),
                (tail, 0.0),
            ]
            choice["logprobs"] = {
                "content": [
                    {"token": t, "logprob": p, "bytes": None, "top_logprobs": []}
                    for t, p in pieces
                    if t
                ]
            }
        return choice


def _has_image(body: dict[str, Any]) -> bool:
    return any(
        isinstance(part, dict) and part.get("type") == "image_url"
        for message in body.get("messages", [])
        for part in (message.get("content") if isinstance(message.get("content"), list) else [])
    )


def _format_problem(form: dict[str, Any], body: dict[str, Any]) -> tuple[str, str] | None:
    """(param, message) for a response_format OpenAI would refuse, as OpenAI words it."""
    if form.get("type") == "json_object":
        words = json.dumps(body.get("messages", [])).lower()
        if "json" not in words:
            return "messages", (
                "'messages' must contain the word 'json' in some form, to use "
                "'response_format' of type 'json_object'."
            )
    if form.get("type") != "json_schema":
        return None
    spec = form.get("json_schema") or {}
    if not spec.get("name"):
        return (
            "response_format.json_schema.name",
            "Missing required parameter: 'response_format.json_schema.name'.",
        )
    if spec.get("strict"):
        where = _strict_problem(spec.get("schema") or {}, ())
        if where is not None:
            return (
                "response_format",
                f"Invalid schema for response_format '{spec['name']}': {where}",
            )
    return None


def _strict_problem(schema: dict[str, Any], context: tuple[str, ...]) -> str | None:
    """OpenAI's strict-mode rules: known keywords, closed objects, every property required."""
    at = f"In context={context}, "
    for keyword in schema:
        if keyword not in STRICT_KEYWORDS:
            return f"{at}'{keyword}' is not permitted."
    if schema.get("type") == "object":
        if schema.get("additionalProperties") is not False:
            return f"{at}'additionalProperties' is required to be supplied and to be false."
        properties = schema.get("properties", {})
        missing = [name for name in properties if name not in schema.get("required", [])]
        if missing:
            return (
                f"{at}'required' is required to be supplied and to be an array including "
                f"every key in properties. Missing '{missing[0]}'."
            )
        for name, child in properties.items():
            found = _strict_problem(child, (*context, "properties", name))
            if found is not None:
                return found
    return None


def _colour(body: dict[str, Any]) -> str | None:
    import io

    from PIL import Image

    for message in body.get("messages", []):
        content = message.get("content")
        for part in content if isinstance(content, list) else []:
            url = (part.get("image_url") or {}).get("url", "") if isinstance(part, dict) else ""
            if found := DATA_URI.match(url):
                with Image.open(io.BytesIO(_decode(found.group("data")))) as img:
                    mean = img.convert("RGB").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
                    return nearest_colour(tuple(mean))
    return None


def start(state: FakeOpenAI) -> Callable[[], None]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.path.split("?", 1)[0] != ROUTE:
                self._send(
                    404, {"error": {"message": f"no route {self.path}", "type": "not_found"}}
                )
                return
            body = json.loads(raw or b"{}")
            headers = {k.lower(): v for k, v in self.headers.items()}
            seen = Seen(body, headers, _colour(body))
            with state._lock:
                state.seen.append(seen)
            if state.latency:
                state._stopping.wait(state.latency)
            answer = state.reply(seen, headers)
            if answer.hang:
                state._stopping.wait(answer.hang)
            if answer.drop or state._stopping.is_set():
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self._send(answer.status, answer.body or {}, answer.headers)

        def _send(
            self, status: int, payload: dict[str, Any], extra: dict[str, str] | None = None
        ) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                for key, value in (extra or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = _Server(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        state._stopping.set()
        server.shutdown()
        server.server_close()

    return stop


__all__ = ["COLOURS", "OPENAI_TEST_KEY", "FakeOpenAI", "Scripted", "error_body", "start"]
