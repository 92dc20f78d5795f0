"""A loopback fake of an OpenAI-compatible `POST /v1/chat/completions`, for end-to-end tests
driven by the real `openai` SDK over HTTP.

Like the Gemini fake it decodes the image (a data URI) and answers by its colour. It
checks the bearer key, honours `n`, `logprobs`/`top_logprobs` and `response_format`
(strict JSON schema, `json_object`, or plain text), can act as a server without strict
schema (or without any JSON mode), and scripts 401, 404, 429 with `retry-after`, 500,
refusals and content-filter finishes.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from fake_gemini import COLOURS, _decode, _Server, nearest_colour, seen_label

OPENAI_TEST_KEY = "FAKE-openai-test-key-abcdefghijklmnopqrstuvwxyz"
ROUTE = "/v1/chat/completions"
DATA_URI = re.compile(r"^data:image/[a-z]+;base64,(?P<data>.+)$", re.DOTALL)
LABEL_LOGPROB = -0.2


@dataclass(frozen=True)
class Scripted:
    """A reply other than the colour's label."""

    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    refusal: str | None = None
    finish: str = "stop"

    @staticmethod
    def error(status: int, message: str, kind: str, code: str | None = None) -> Scripted:
        return Scripted(status, {"error": {"message": message, "type": kind, "code": code}})


@dataclass
class Seen:
    body: dict[str, Any]
    headers: dict[str, str]
    colour: str | None


@dataclass
class FakeOpenAI:
    api_key: str | None = OPENAI_TEST_KEY  # None: a local server that takes any key
    formats: tuple[str, ...] = ("json_schema", "json_object", "text")  # what it supports
    logprobs: bool = True
    multiple_choices: bool = True
    reported_model: str | None = None  # the name answers come back under; None: as asked
    chatty: bool = False  # in text mode, answer a sentence rather than a bare word
    unsupported: set[str] = field(default_factory=set)  # request fields it answers 400 to
    by_colour: dict[str, Scripted | list[Scripted]] = field(default_factory=dict)
    ambiguous_happy: float = 0.6
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = random.Random(99)

    def requests(self) -> list[Seen]:
        return list(self.seen)

    def reply(
        self, seen: Seen, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        body = seen.body
        auth = headers.get("authorization", "")
        if self.api_key is not None and auth != f"Bearer {self.api_key}":
            message = "Incorrect API key provided."
            return (
                401,
                Scripted.error(401, message, "invalid_request_error", "invalid_api_key").body or {},
                {},
            )
        if body.get("model") == "no-such-model":
            error = Scripted.error(404, "The model does not exist.", "invalid_request_error")
            return 404, error.body or {}, {}
        for name in sorted(self.unsupported & set(body)):
            message = f"Unsupported parameter: '{name}' is not supported with this model."
            return 400, Scripted.error(400, message, "invalid_request_error").body or {}, {}
        form = (body.get("response_format") or {"type": "text"}).get("type", "text")
        if form not in self.formats:
            message = f"response_format {form} is not supported by this server"
            return 400, Scripted.error(400, message, "invalid_request_error").body or {}, {}
        if body.get("logprobs") and not self.logprobs:
            message = "logprobs are not supported by this server"
            return 400, Scripted.error(400, message, "invalid_request_error").body or {}, {}
        if int(body.get("n", 1)) > 1 and not self.multiple_choices:
            message = "'n' must be 1 for this model"
            return 400, Scripted.error(400, message, "invalid_request_error").body or {}, {}
        with self._lock:
            scripted = self.by_colour.get(seen.colour or "")
            if isinstance(scripted, list):
                scripted = scripted.pop(0) if scripted else None
        if scripted is not None and scripted.status != 200:
            return scripted.status, scripted.body or {}, scripted.headers
        choices = [
            self._choice(i, seen, form, body, scripted) for i in range(int(body.get("n", 1)))
        ]
        return (
            200,
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 0,
                "model": self.reported_model or body["model"],
                "choices": choices,
                "usage": {"prompt_tokens": 120, "completion_tokens": 12, "total_tokens": 132},
            },
            {},
        )

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
            status, payload, extra = state.reply(seen, headers)
            self._send(status, payload, extra)

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
        server.shutdown()
        server.server_close()

    return stop


__all__ = ["COLOURS", "OPENAI_TEST_KEY", "FakeOpenAI", "Scripted", "start"]
