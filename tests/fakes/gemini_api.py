"""A loopback fake of the Gemini `generateContent` endpoint, for end-to-end tests.

It speaks the real wire format, decodes the uploaded image and "sees" its colour: each of
the seven emotions has a colour (`fakes.colours`), so a test image's label is known in
advance. Faults are scripted per colour, per request, or at random rates.
"""

from __future__ import annotations

import json
import random
import re
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fakes import server
from fakes.colours import colour_of, decode, seen_label
from fakes.google_protos import named, request_problem

# The API version segment the supported SDK range (google-genai 3.x) sends, and no other:
# a wire change must fail loudly here, not pass unnoticed.
VERSION = "v1"
PATH = re.compile(rf"^/{VERSION}/models/(?P<model>[^/:]+):generateContent$")
BATCH_CREATE = re.compile(rf"^/{VERSION}/models/([^/:]+):batchGenerateContent$")
BATCH_GET = re.compile(rf"^/{VERSION}/batches/([^/:]+)$")
BATCH_CANCEL = re.compile(rf"^/{VERSION}/batches/([^/:]+):cancel$")
BATCH_LIST = re.compile(rf"^/{VERSION}/batches$")
FILE_GET = re.compile(rf"^/{VERSION}/files/([^/:]+)$")
FILE_DOWNLOAD = re.compile(rf"^/{VERSION}/files/([^/:]+):download$")
UPLOAD_START = f"/upload/{VERSION}/files"
LABEL_LOGPROB = -0.105  # exp() of this is 0.9003, the confidence tests expect
TEST_KEY = "FAKE-emotag-test-key-0123456789abcdefghijk"  # recognisable, not Google-shaped

# How the real API words a refused optional setting (see providers/gemini._SETTING_WORDS).
REFUSALS = {
    "responseLogprobs": "Logprobs is not enabled for models/{model}",
    "thinkingConfig": "Thinking is not supported by models/{model}",
    "mediaResolution": "Media resolution is not supported by models/{model}",
    "candidateCount": "Multiple candidates is not enabled for models/{model}",
}


@dataclass(frozen=True)
class Reply(server.Reply):
    """What the fake answers to one request; a 200 without a `body` is the label the
    colour says, as JSON with these fields."""

    text: str | None = None  # model text; None means "the label the colour says"
    faces: str = "one"  # the face count in a JSON answer: none, one or several
    emotion: str | None = None  # a JSON answer with this label instead of the colour's

    @staticmethod
    def redirect(url: str, status: int = 307) -> Reply:
        """A redirect elsewhere, as a hostile or misconfigured endpoint might answer."""
        return Reply(status=status, body={}, headers={"Location": url})

    @staticmethod
    def error(code: int, status: str, message: str = "", retry_delay: str | None = None) -> Reply:
        details: list[dict[str, Any]] = []
        if retry_delay is not None:
            details.append(
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}
            )
        error = {"code": code, "status": status, "message": message or status, "details": details}
        return Reply(status=code, body={"error": error})

    @staticmethod
    def daily_quota(model: str = "gemini-3.5-flash-lite") -> Reply:
        """429 for a spent per-day quota, with the details the real API sends."""
        reply = Reply.error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", "17s")
        assert reply.body is not None
        reply.body["error"]["details"][:0] = [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/generate_requests",
                        "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                        "quotaDimensions": {"location": "global", "model": model},
                        "quotaValue": "20",
                    }
                ],
            },
            {"@type": "type.googleapis.com/google.rpc.Help", "links": []},
        ]
        return reply

    @staticmethod
    def cut_off() -> Reply:
        """The output limit reached mid-answer: MAX_TOKENS with a torn JSON text."""
        candidate = {
            "content": {"parts": [{"text": '{"faces": "one", "emo'}], "role": "model"},
            "finishReason": "MAX_TOKENS",
        }
        return Reply(body={"candidates": [candidate], "usageMetadata": _usage(280)})

    @staticmethod
    def blocked_prompt(reason: str = "SAFETY") -> Reply:
        return Reply(body={"promptFeedback": {"blockReason": reason}, "usageMetadata": _usage(0)})

    @staticmethod
    def finish(reason: str) -> Reply:
        candidate = {"content": {"parts": [], "role": "model"}, "finishReason": reason}
        return Reply(body={"candidates": [candidate], "usageMetadata": _usage(0)})


@dataclass
class Seen:
    """One request as the fake received it."""

    path: str
    model: str
    headers: dict[str, str]
    body: dict[str, Any]
    image_size: tuple[int, int] | None
    colour: str | None
    time: float


@dataclass(slots=True)  # a test that sets a field the fake lacks fails at once
class FakeGemini:
    """The server's state; tests change its fields while it runs."""

    latency: float = 0.0
    logprobs: str = "ok"  # "ok" answers with logprobs, "reject" answers 400 like AI Studio
    unknown_models: set[str] = field(default_factory=set)
    api_key: str = TEST_KEY  # checked on every endpoint but upload chunks, as Google does
    by_colour: dict[str, Reply | list[Reply]] = field(default_factory=dict)
    queue: list[Reply] = field(default_factory=list)
    fault_rates: dict[str, float] = field(default_factory=dict)
    hang_seconds: float = 30.0
    seed: int = 1234
    rejected_settings: set[str] = field(default_factory=set)
    quota_until: float = 0.0  # time.monotonic() before which every request gets a 429
    quota_window: float = 0.0  # or: every request gets a 429 this long after the first one
    quota_delay: str = "1s"
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    # Files and Batch API: uploaded files, batch jobs, how many polls a job takes to finish
    # and how it ends (BATCH_STATE_SUCCEEDED, _FAILED or _EXPIRED).
    files: dict[str, bytes] = field(default_factory=dict)
    uploads: dict[str, bytearray] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    batch_polls: int = 1
    batch_outcome: str = "BATCH_STATE_SUCCEEDED"
    batch_creates: int = 0
    uploads_started: int = 0
    misuse: list[str] = field(default_factory=list)  # answers the real API could not give
    key_refusals: int = 0  # requests refused for their key (not in `seen`)
    daily_quota_after: int | None = None  # answers before the per-day quota is spent
    ambiguous_happy: float = 0.6  # chance an "ambiguous" image is answered happy
    # Fields a newer API adds to every answer, candidate and usage, unknown to this SDK.
    newer_fields: dict[str, Any] = field(default_factory=dict)
    answered: int = 0
    granted: int = 0  # requests let through under daily_quota_after
    in_flight: int = 0
    max_in_flight: int = 0  # the most labelling requests the fake was answering at once
    # Cleared: every labelling request waits, unanswered, until it is set again.
    hold: threading.Event = field(default_factory=threading.Event)
    abandoned: int = 0  # held requests whose client hung up before the answer
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self.hold.set()

    @property
    def count(self) -> int:
        return len(self.seen)

    def labelling_requests(self) -> list[Seen]:
        return [s for s in self.seen if s.model and s.path != "batch"]

    def batch_requests(self) -> list[Seen]:
        return [s for s in self.seen if s.path == "batch"]

    def key_error(self, headers: dict[str, str]) -> Reply | None:
        """What the real API answers a request without the right key, if it lacks one."""
        key = headers.get("x-goog-api-key", "")
        if not key:
            return Reply.error(
                403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers."
            )
        if key != self.api_key:
            reply = Reply.error(
                400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."
            )
            assert reply.body is not None
            reply.body["error"]["details"] = [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
            ]
            return reply
        return None

    def choose(self, seen: Seen) -> Reply:
        with self._lock:
            if refused := self.key_error(seen.headers):
                return refused
            if seen.model in self.unknown_models:
                return Reply.error(404, "NOT_FOUND", f"models/{seen.model} is not found")
            if invalid := _invalid_request(seen.body, seen.model):
                return Reply.error(400, "INVALID_ARGUMENT", invalid)
            config = seen.body.get("generationConfig", {})
            refused_here = set(self.rejected_settings)
            if seen.model.startswith("gemini-3"):
                refused_here.add("candidateCount")  # as the real Gemini 3 models do
            elif int(config.get("candidateCount", 1)) > 8:
                return Reply.error(400, "INVALID_ARGUMENT", "candidateCount must be 1 to 8.")
            if self.logprobs == "reject":
                refused_here.add("responseLogprobs")
            for setting in sorted(refused_here):
                if setting in config:
                    message = REFUSALS[setting].format(model=seen.model)
                    return Reply.error(400, "INVALID_ARGUMENT", message)
            interactive = seen.path != "batch"  # the Batch API has a quota of its own
            if self.quota_window and not self.quota_until and interactive:
                self.quota_until = seen.time + self.quota_window
            if self.daily_quota_after is not None and interactive:
                if self.granted >= self.daily_quota_after:
                    return Reply.daily_quota(seen.model)
                self.granted += 1  # counted when granted: concurrent requests cannot overrun
            if seen.time < self.quota_until and interactive:
                return Reply.error(429, "RESOURCE_EXHAUSTED", "Quota exceeded", self.quota_delay)
            if self.queue:
                return self.queue.pop(0)
            return server.scripted(self.by_colour, seen.colour) or self._random_fault() or Reply()

    def _random_fault(self) -> Reply | None:
        roll = self._rng.random()
        for kind, rate in self.fault_rates.items():
            if roll < rate:
                return {
                    "429": Reply.error(429, "RESOURCE_EXHAUSTED", "Quota exceeded", "0.2s"),
                    "500": Reply.error(500, "INTERNAL", "Internal error"),
                    "503": Reply.error(503, "UNAVAILABLE", "The model is overloaded"),
                    "hang": Reply(hang=self.hang_seconds),
                }[kind]
            roll -= rate
        return None

    def wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)


THINKING_KEYS = frozenset({"thinkingBudget", "thinkingLevel", "includeThoughts"})
THINKING_LEVELS = ("MINIMAL", "LOW", "MEDIUM", "HIGH")
IMAGE_MAGIC = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/webp": (b"RIFF",),
    "image/gif": (b"GIF87a", b"GIF89a"),
}
BAD_IMAGE = (
    "Unable to process input image. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting"
)


def _camel(fields: dict[str, Any]) -> dict[str, Any]:
    """Google's JSON parser takes a proto field by its lowerCamelCase name or its own
    snake_case one (the SDK sends `thinking_level`, `mime_type`): the fake reads both."""
    return {
        "".join(w.title() if i else w for i, w in enumerate(k.split("_"))): v
        for k, v in fields.items()
    }


def _thinking_problem(config: dict[str, Any], model: str) -> str | None:
    """What each model family says to a thinkingConfig it does not take (Google's docs:
    2.5 takes a budget, and 2.5 Pro none of 0; 3.x a level, and 3.x Pro no MINIMAL)."""
    if config.get("thinkingConfig") is None:
        return None
    thinking = _camel(config["thinkingConfig"])
    if unknown := sorted(set(thinking) - THINKING_KEYS):
        return (
            f'Invalid JSON payload received. Unknown name "{unknown[0]}" at '
            "'generation_config.thinking_config': Cannot find field."
        )
    if model.startswith(("gemini-1", "gemini-2.0")):
        return "Thinking is not supported for this model."
    if "thinkingBudget" in thinking and "thinkingLevel" in thinking:
        return "You can only set only one of thinking budget and thinking level."
    level = thinking.get("thinkingLevel")
    if model.startswith("gemini-2"):
        if level is not None:
            return "Thinking level is not supported for this model."
        if "pro" in model and thinking.get("thinkingBudget") == 0:
            return "Budget 0 is invalid. This model only works in thinking mode."
        return None
    if level is not None and level not in THINKING_LEVELS:
        return f"Invalid value at 'generation_config.thinking_config.thinking_level' ({level})"
    if "pro" in model and level == "MINIMAL":
        return "Thinking level MINIMAL is not supported for this model."
    return None


def _image_problem(body: dict[str, Any]) -> str | None:
    """The declared mimeType must be what the bytes are."""
    for content in body.get("contents", []):
        for part in content.get("parts", []):
            inline = _camel(_camel(part).get("inlineData") or {})
            if not inline:
                continue
            magic = IMAGE_MAGIC.get(inline.get("mimeType", ""))
            if magic is None or not decode(inline.get("data", "")).startswith(magic):
                return BAD_IMAGE
    return None


def _invalid_request(body: dict[str, Any], model: str) -> str | None:
    """The 400 message the real API gives a request it cannot parse, or None: parsed as
    Google parses it (`google_protos`), then the rules the protos do not state."""
    if problem := request_problem(body):
        return f"Invalid JSON payload received. {problem}"
    config = body.get("generationConfig") or body.get("generation_config") or {}
    if "responseSchema" in config and "responseJsonSchema" in config:
        return "responseSchema and responseJsonSchema cannot both be set."
    if ("responseSchema" in config or "responseJsonSchema" in config) and config.get(
        "responseMimeType"
    ) not in ("application/json", "text/x.enum"):
        return "A response schema needs responseMimeType application/json or text/x.enum."
    return _thinking_problem(config, model) or _image_problem(body)


def _usage(prompt_tokens: int) -> dict[str, int]:
    return {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": 5,
        "totalTokenCount": prompt_tokens + 5,
    }


def _inspect_image(body: dict[str, Any]) -> tuple[tuple[int, int] | None, str | None]:
    for content in body.get("contents", []):
        for part in content.get("parts", []):
            inline = part.get("inlineData") or part.get("inline_data")
            if inline:
                return colour_of(decode(inline["data"]))
    return None, None


def _answer(state: FakeGemini, seen: Seen, reply: Reply) -> dict[str, Any]:
    if reply.body is not None:
        return reply.body
    config = seen.body.get("generationConfig", {})
    count = int(config.get("candidateCount", 1))
    candidates = [
        {**_candidate(state, seen, reply, config), **state.newer_fields} for _ in range(count)
    ]
    usage = {**_usage(280), **state.newer_fields}
    return {
        "candidates": candidates,
        "usageMetadata": usage,
        "modelVersion": seen.model,
        **state.newer_fields,
    }


def _candidate(
    state: FakeGemini, seen: Seen, reply: Reply, config: dict[str, Any]
) -> dict[str, Any]:
    """One independent answer: an ambiguous face is a fresh draw each time."""
    with state._lock:
        colour = seen_label(seen.colour, state._rng, state.ambiguous_happy)
    label = reply.text if reply.text is not None else (reply.emotion or colour)
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    if schema is not None:
        # Constrained decoding: the real API can only answer what the schema allows.
        text = reply.text or json.dumps({"faces": reply.faces, "emotion": label})
        _check_schema(schema, text)
    else:
        text = label
    candidate: dict[str, Any] = {
        "content": {"parts": [{"text": text}], "role": "model"},
        "finishReason": "STOP",
        "avgLogprobs": -0.02,
    }
    if config.get("responseLogprobs"):
        head, _, tail = text.rpartition(label)
        tokens = [(head, 0.0), (label, LABEL_LOGPROB), (tail, 0.0)]
        candidate["logprobsResult"] = {
            "chosenCandidates": [{"token": t, "logProbability": p} for t, p in tokens if t],
            "topCandidates": [],
        }
    return candidate


class FakeMisuse(AssertionError):
    """A test scripted an answer the real API could never give."""


def _check_schema(schema: dict[str, Any], text: str) -> None:
    try:
        answer = json.loads(text)
    except ValueError:
        raise FakeMisuse(f"schema mode answers JSON only, not {text!r}") from None
    properties = schema.get("properties", {})
    if set(answer) - set(properties) or not set(schema.get("required", [])) <= set(answer):
        raise FakeMisuse(f"{text!r} does not have the schema's fields")
    for name, value in answer.items():
        allowed = properties[name].get("enum")
        if allowed is not None and value not in allowed:
            raise FakeMisuse(f"{name}={value!r} is not in the schema's enum")


def _file_json(state: FakeGemini, name: str) -> dict[str, Any]:
    size = len(state.files.get(name, b""))
    return {
        "name": name,
        "mimeType": "application/jsonl",
        "sizeBytes": str(size),
        "state": "ACTIVE",
    }


def _job(state: FakeGemini, job_id: str) -> dict[str, Any]:
    return state.jobs[f"batches/{job_id}"]


def _invalid_batch(state: FakeGemini, body: dict[str, Any]) -> str | None:
    """The 400 the real API gives a batch it cannot take (emotag sends a file, never
    inline requests, so the fake takes files only)."""
    batch = body.get("batch")
    if not isinstance(batch, dict):
        return "* BatchGenerateContentRequest.batch: batch is required"
    known = {"displayName", "inputConfig", "priority", "display_name", "input_config"}
    if unknown := sorted(set(batch) - known):  # both spellings, as the API (REST docs: snake)
        return f"Invalid JSON payload received. Unknown name \"{unknown[0]}\" at 'batch'"
    source = named(named(batch, "inputConfig") or {}, "fileName")
    if not isinstance(source, str):
        return "* BatchGenerateContentRequest.batch.input_config: file_name is required"
    if source not in state.files:
        return f"* BatchGenerateContentRequest.batch.input_config.file_name: {source} not found"
    return None


def _create_batch(
    state: FakeGemini, model: str, body: dict[str, Any], headers: Any
) -> dict[str, Any]:
    batch = body["batch"]
    name = f"batches/b{len(state.jobs) + 1}"
    state.batch_creates += 1
    state.jobs[name] = {
        "name": name,
        "metadata": {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
            "name": name,
            "displayName": named(batch, "displayName") or "",
            "model": f"models/{model}",
            "state": "BATCH_STATE_PENDING",
            "createTime": "2026-11-25T00:00:00Z",
        },
        "_input": named(named(batch, "inputConfig"), "fileName"),
        "_headers": {k.lower(): v for k, v in headers.items()},
        "_polls": 0,
    }
    return _public(state.jobs[name])


def _poll_batch(state: FakeGemini, job_id: str) -> dict[str, Any]:
    """Each poll moves a job on; after `batch_polls` polls it ends as `batch_outcome`."""
    job = _job(state, job_id)
    meta = job["metadata"]
    if meta["state"] in ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING"):
        job["_polls"] += 1
        meta["state"] = "BATCH_STATE_RUNNING"
        if job["_polls"] >= state.batch_polls:
            meta["state"] = state.batch_outcome
            job["done"] = True
            if state.batch_outcome == "BATCH_STATE_SUCCEEDED":
                meta["output"] = {"responsesFile": _run_batch(state, job)}
    return _public(job)


def _run_batch(state: FakeGemini, job: dict[str, Any]) -> str:
    """Answer every line of the job's input file exactly as generateContent would."""
    lines = []
    model = job["metadata"]["model"].removeprefix("models/")
    for raw in state.files[job["_input"]].decode().splitlines():
        item = json.loads(raw)
        request = item["request"]
        size, colour = _inspect_image(request)
        seen = Seen("batch", model, job["_headers"], request, size, colour, time.monotonic())
        state.seen.append(seen)
        reply = state.choose(seen)
        if reply.status == 200:
            lines.append({"key": item["key"], "response": _answer(state, seen, reply)})
        else:
            lines.append({"key": item["key"], "error": (reply.body or {}).get("error", {})})
    name = f"files/results-{job['name'].rsplit('/', 1)[1]}"
    state.files[name] = "\n".join(json.dumps(line) for line in lines).encode()
    return name


def _public(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if not k.startswith("_")}


def _handler(state: FakeGemini) -> type[server.Handler]:
    class Handler(server.Handler):
        json_type = "application/json; charset=UTF-8"

        def do_POST(self) -> None:
            raw = self.read_body()
            route = self.path.split("?", 1)[0]
            if route.startswith("/_upload/"):  # upload chunks carry no key, as with Google
                self._upload(route, raw)
                return
            if self._refused():
                return
            if route == UPLOAD_START:
                self._upload(route, raw)
                return
            if found := BATCH_CREATE.match(route):
                body = json.loads(raw or b"{}")
                if problem := _invalid_batch(state, body):
                    error = {"code": 400, "status": "INVALID_ARGUMENT", "message": problem}
                    self.send_json(400, {"error": error})
                    return
                self.send_json(200, _create_batch(state, found.group(1), body, self.headers))
                return
            if found := BATCH_CANCEL.match(route):
                if self._known_job(found.group(1)):
                    meta = _job(state, found.group(1))["metadata"]
                    if meta["state"] in ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING"):
                        meta["state"] = "BATCH_STATE_CANCELLED"  # a finished job stays as it is
                    self.send_json(200, {})
                return
            match = PATH.match(route)
            if not match:
                self._not_found()
                return
            body = json.loads(raw or b"{}")
            size, colour = _inspect_image(body)
            seen = Seen(
                path=self.path,
                model=match.group("model"),
                headers=self.lowered_headers(),
                body=body,
                image_size=size,
                colour=colour,
                time=time.monotonic(),
            )
            with state._lock:
                state.seen.append(seen)
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
            try:
                self._answer_labelling(seen)
            finally:
                with state._lock:
                    state.in_flight -= 1

        def _answer_labelling(self, seen: Seen) -> None:
            while not state.hold.wait(0.05):
                if state._stopping.is_set():
                    return
                if self._hung_up():
                    with state._lock:
                        state.abandoned += 1
                    return
            reply = state.choose(seen)
            if state.latency:
                state.wait(state.latency)
            if reply.hang:
                state.wait(reply.hang)
                if state._stopping.is_set():
                    return
            if reply.drop:
                self.hang_up()
                return
            try:
                answer = _answer(state, seen, reply)
            except FakeMisuse as exc:
                state.misuse.append(str(exc))
                self.send_json(
                    500, {"error": {"code": 500, "status": "INTERNAL", "message": str(exc)}}
                )
                return
            if reply.status == 200 and not reply.cut:
                with state._lock:
                    state.answered += 1
            self.send_json(reply.status, answer, reply.headers, cut=reply.cut)

        def _hung_up(self) -> bool:
            """The client closed the connection while its request was held: an HTTP/1.1
            client sends nothing more on it before the answer, so readable means closed."""
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""

        def do_GET(self) -> None:
            route = self.path.split("?", 1)[0]
            if route == "/_stats":
                # Control channel for a fake in another process (benchmarks): request times.
                with state._lock:
                    times = [s.time for s in state.seen if s.model]
                self.send_json(
                    200,
                    {"count": len(times), "times": times, "max_in_flight": state.max_in_flight},
                )
                return
            if self._refused():
                return
            if found := FILE_DOWNLOAD.match(route):
                if self._known_file(found.group(1)):
                    self.send_bytes(200, state.files[f"files/{found.group(1)}"])
                return
            if found := FILE_GET.match(route):
                if self._known_file(found.group(1)):
                    self.send_json(200, _file_json(state, f"files/{found.group(1)}"))
                return
            if found := BATCH_GET.match(route):
                if self._known_job(found.group(1)):
                    self.send_json(200, _poll_batch(state, found.group(1)))
                return
            if BATCH_LIST.match(route):
                self.send_json(200, {"operations": [_public(job) for job in state.jobs.values()]})
                return
            self._not_found()

        def _refused(self) -> bool:
            """Answer a request without the right key as Google does; True if refused."""
            refusal = state.key_error(self.lowered_headers())
            if refusal is not None:
                with state._lock:
                    state.key_refusals += 1
                self.send_json(refusal.status, refusal.body or {})
            return refusal is not None

        def _known_file(self, file_id: str) -> bool:
            if f"files/{file_id}" in state.files:
                return True
            self._not_found(f"File files/{file_id} was not found.")
            return False

        def _known_job(self, job_id: str) -> bool:
            if f"batches/{job_id}" in state.jobs:
                return True
            self._not_found(f"Batch batches/{job_id} was not found.")
            return False

        def _not_found(self, message: str = "") -> None:
            error = {"code": 404, "status": "NOT_FOUND", "message": message or self.path}
            self.send_json(404, {"error": error})

        def do_PUT(self) -> None:
            if self.path != "/_config":
                self.send_json(
                    404, {"error": {"code": 404, "status": "NOT_FOUND", "message": self.path}}
                )
                return
            body = json.loads(self.read_body())
            state.latency = float(body.get("latency", state.latency))
            self.send_json(200, {"latency": state.latency})

        def do_DELETE(self) -> None:
            if self._refused():
                return
            found = BATCH_GET.match(self.path.split("?", 1)[0])
            if found and self._known_job(found.group(1)):
                state.jobs.pop(f"batches/{found.group(1)}")
                self.send_json(200, {})
            elif not found:
                self._not_found()

        def _upload(self, route: str, raw: bytes) -> None:
            """The resumable upload protocol the SDK speaks (start, then chunks)."""
            if route == UPLOAD_START:
                state.uploads_started += 1
                upload_id = f"u{state.uploads_started}"
                state.uploads[upload_id] = bytearray()
                self.send_json(200, {}, {"X-Goog-Upload-URL": f"{state.url}/_upload/{upload_id}"})
                return
            upload_id = route.rsplit("/", 1)[1]
            state.uploads[upload_id] += raw
            if "finalize" not in (self.headers.get("X-Goog-Upload-Command") or ""):
                self.send_json(200, {}, {"X-Goog-Upload-Status": "active"})
                return
            name = f"files/{upload_id}"
            state.files[name] = bytes(state.uploads.pop(upload_id))
            self.send_json(
                200, {"file": _file_json(state, name)}, {"X-Goog-Upload-Status": "final"}
            )

    return Handler


def start(state: FakeGemini) -> Callable[[], None]:
    """Serve `state` on 127.0.0.1 in a thread; return a function that stops it."""
    state.url, stop = server.serve(_handler(state), state._stopping)
    return stop


def main() -> None:
    """Run the fake on its own (for benchmarks and manual tries): `python -m
    fakes.gemini_api` from the tests folder."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    state = FakeGemini(latency=args.latency)
    stop = start(state)
    # GET /_stats gives the labelling requests' times; PUT /_config {"latency": s} sets it.
    print(state.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        stop()


if __name__ == "__main__":
    main()
