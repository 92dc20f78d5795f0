"""A loopback fake of an OpenAI-compatible `POST /v1/chat/completions`, and of OpenAI's
Files and Batch APIs, for end-to-end tests driven by the real `openai` SDK over HTTP.

Like the Gemini fake it decodes the image (a data URI) and answers by its colour. It is as
strict as OpenAI: the bearer key, 400 for an unknown field, strict JSON schemas checked by
OpenAI's rules (a name, closed objects, every property required), `json_object` only with
the word "json" in the messages, errors in OpenAI's shape (`message`, `type`, `param`,
`code`). It can act as a server without strict schema (or any JSON mode), a text-only
model, an account whose credit runs out, and scripts 401, 404, 429 with its wait headers,
500, hangs, dropped connections, refusals and content-filter finishes without text.

Batch: `POST /v1/files` (multipart, `purpose=batch`), `GET /v1/files/{id}/content`,
`POST /v1/batches` (`endpoint` one of OpenAI's, `completion_window` "24h"),
`GET /v1/batches[/{id}]`, `POST /v1/batches/{id}/cancel`. A job is `validating` until its
first read, when its file is checked as OpenAI does (each line a JSON object with
`custom_id` of at most 64 characters, unique in the file, `method` POST, `url` equal to
the job's `endpoint`, one `body.model` for the whole file, at most 50,000 lines and
200 MB); a file that breaks a rule fails the job with `errors.data`. Then `in_progress`
for `batch_polls` reads, `finalizing`, and `completed` (or `batch_outcome`), each line
answered as the live endpoint would answer it, into an output file (200s) and an error
file (the rest). With `batch_api=False` it is a compatible server without these routes.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fakes import server
from fakes.colours import colour_of, decode, seen_label

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
BATCH_ENDPOINTS = frozenset(
    {"/v1/responses", "/v1/chat/completions", "/v1/embeddings", "/v1/completions",
     "/v1/moderations"}
)  # fmt: skip
BATCH_MAX_REQUESTS = 50_000
BATCH_MAX_BYTES = 200 * 1024 * 1024
CUSTOM_ID_MAX = 64


def error_body(
    message: str, kind: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """OpenAI's error shape: every field present, null where it has no value."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


@dataclass(frozen=True)
class Reply(server.Reply):
    """A reply other than the colour's label: a 200 without a `body` is that label, with
    this refusal or finish reason."""

    refusal: str | None = None
    finish: str = "stop"

    @staticmethod
    def error(
        status: int, message: str, kind: str, code: str | None = None, param: str | None = None
    ) -> Reply:
        return Reply(status, error_body(message, kind, param, code))

    @staticmethod
    def rate_limited(seconds: float, header: str = "retry-after") -> Reply:
        """429 rate_limit_exceeded as OpenAI sends it, the wait in `header`."""
        wait = f"{seconds:g}" if header == "retry-after" else f"{seconds:g}s"
        message = (
            "Rate limit reached for gpt-4.1-mini in organization org-fake on requests per min "
            f"(RPM): Limit 3, Used 3, Requested 1. Please try again in {seconds:g}s."
        )
        return Reply(
            429, error_body(message, "requests", None, "rate_limit_exceeded"), {header: wait}
        )

    @staticmethod
    def no_credit() -> Reply:
        return Reply.error(429, QUOTA_MESSAGE, "insufficient_quota", "insufficient_quota")


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
    by_colour: dict[str, Reply | list[Reply]] = field(default_factory=dict)
    ambiguous_happy: float = 0.6
    seen: list[Seen] = field(default_factory=list)
    answered: int = 0
    url: str = ""
    # Files and Batch API (see the module's docstring).
    batch_api: bool = True
    batch_polls: int = 1
    batch_outcome: str = "completed"  # or "expired", "failed"
    batch_max_requests: int = BATCH_MAX_REQUESTS
    batch_max_bytes: int = BATCH_MAX_BYTES
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> object + "data"
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    batch_creates: int = 0
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(99)

    def requests(self) -> list[Seen]:
        return list(self.seen)

    def reply(self, seen: Seen, headers: dict[str, str]) -> Reply:
        """What to answer one request: a status and body, maybe after a hang, or a drop."""
        body = seen.body
        refused = self._refusal(body, headers)
        if refused is not None:
            return refused
        with self._lock:
            scripted = server.scripted(self.by_colour, seen.colour)
            if scripted is None or scripted.status == 200:
                if self.credit is not None and self.answered >= self.credit:
                    scripted = Reply.no_credit()
                else:
                    self.answered += 1
        if scripted is not None and (scripted.status != 200 or scripted.drop):
            return scripted
        form = (body.get("response_format") or {"type": "text"})["type"]
        choices = [
            self._choice(i, seen, form, body, scripted) for i in range(int(body.get("n", 1)))
        ]
        return Reply(
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

    def _refusal(self, body: dict[str, Any], headers: dict[str, str]) -> Reply | None:
        """What the real API answers a request it will not take, in its own words."""
        if (refused := self._key_refusal(headers)) is not None:
            return refused
        for name in sorted(set(body) - KNOWN_FIELDS):
            message = f"Unrecognized request argument supplied: {name}"
            return Reply.error(400, message, "invalid_request_error")
        if body.get("model") == "no-such-model":
            message = f"The model `{body['model']}` does not exist or you do not have access to it."
            return Reply.error(404, message, "invalid_request_error", "model_not_found")
        for name in sorted(self.unsupported & set(body)):
            message = f"Unsupported parameter: '{name}' is not supported with this model."
            return Reply.error(400, message, "invalid_request_error", "unsupported_parameter", name)
        if not self.vision and _has_image(body):
            return Reply.error(
                400,
                NO_VISION_MESSAGE,
                "invalid_request_error",
                None,
                "messages.[0].content.[1].type",
            )
        form = body.get("response_format") or {"type": "text"}
        if form.get("type") not in self.formats:
            message = f"response_format {form.get('type')} is not supported by this server"
            return Reply.error(400, message, "invalid_request_error", None, "response_format")
        problem = _format_problem(form, body)
        if problem is not None:
            return Reply.error(400, problem[1], "invalid_request_error", None, problem[0])
        if body.get("logprobs") and not self.logprobs:
            message = "logprobs are not supported by this server"
            return Reply.error(400, message, "invalid_request_error", None, "logprobs")
        if int(body.get("n", 1)) > 1 and not self.multiple_choices:
            message = "'n' must be 1 for this model"
            return Reply.error(400, message, "invalid_request_error", None, "n")
        return None

    def _choice(
        self, index: int, seen: Seen, form: str, body: dict[str, Any], scripted: Reply | None
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

    def batch_lines(self) -> list[dict[str, Any]]:
        """Every request line of every batch job's input file."""
        lines = []
        for job in self.batches.values():
            data = self.files[job["input_file_id"]]["data"]
            lines += [json.loads(line) for line in data.decode().splitlines() if line.strip()]
        return lines

    def route(
        self, method: str, path: str, raw: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any] | bytes]:
        """Files and Batch calls: (status, JSON body or file bytes)."""
        if not self.batch_api:
            return 404, {"detail": "Not Found"}
        refused = self._key_refusal(headers)
        if refused is not None:
            return refused.status, refused.body or {}
        parts = path.strip("/").split("/")[1:]  # after "v1"
        with self._lock:
            if method == "POST" and parts == ["files"]:
                return self._upload(raw, headers.get("content-type", ""))
            if method == "GET" and len(parts) == 3 and parts[0] == "files":
                found = self.files.get(parts[1])
                return (200, found["data"]) if found else _missing("file", parts[1])
            if method == "POST" and parts == ["batches"]:
                return self._create(json.loads(raw or b"{}"))
            if method == "GET" and parts == ["batches"]:
                jobs = [self._public(job) for job in self.batches.values()]
                return 200, {"object": "list", "data": jobs[::-1], "has_more": False}
            if parts[:1] == ["batches"] and len(parts) >= 2 and parts[1] not in self.batches:
                return _missing("batch", parts[1])
            if method == "GET" and len(parts) == 2:
                return 200, self._public(self._advance(self.batches[parts[1]]))
            if method == "POST" and len(parts) == 3 and parts[2] == "cancel":
                return self._cancel(self.batches[parts[1]])
        return 404, error_body(f"Invalid URL ({method} {path})", "invalid_request_error")

    def _key_refusal(self, headers: dict[str, str]) -> Reply | None:
        auth = headers.get("authorization", "")
        if self.api_key is not None and auth != f"Bearer {self.api_key}":
            shown = auth.removeprefix("Bearer ")
            message = (
                f"Incorrect API key provided: {shown[:3]}***{shown[-4:]}. You can find your "
                "API key at https://platform.openai.com/account/api-keys."
            )
            return Reply.error(401, message, "invalid_request_error", "invalid_api_key")
        return None

    def _upload(self, raw: bytes, content_type: str) -> tuple[int, dict[str, Any]]:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + raw
        )
        fields = {
            part.get_param("name", header="content-disposition"): part
            for part in message.iter_parts()
        }
        purpose = fields["purpose"].get_content().strip() if "purpose" in fields else ""
        if purpose not in ("batch", "fine-tune", "assistants", "vision", "user_data", "evals"):
            return 400, error_body(
                f"'{purpose}' is not one of the supported values for purpose",
                "invalid_request_error",
                "purpose",
            )
        if "file" not in fields:
            return 400, error_body("Missing file", "invalid_request_error", "file")
        data = fields["file"].get_payload(decode=True)
        file_id = f"file-{next(self._ids):06d}"
        self.files[file_id] = {
            "id": file_id, "object": "file", "bytes": len(data), "created_at": 0,
            "filename": fields["file"].get_filename() or "upload", "purpose": purpose,
            "status": "processed", "data": data,
        }  # fmt: skip
        return 200, self._file(file_id)

    def _file(self, file_id: str) -> dict[str, Any]:
        return {k: v for k, v in self.files[file_id].items() if k != "data"}

    def _create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        for name in ("input_file_id", "endpoint", "completion_window"):
            if name not in body:
                return 400, error_body(
                    f"Missing required parameter: '{name}'.", "invalid_request_error", name
                )
        if body["endpoint"] not in BATCH_ENDPOINTS:
            return 400, error_body(
                f"Invalid value: '{body['endpoint']}'. Supported values are: "
                + ", ".join(f"'{e}'" for e in sorted(BATCH_ENDPOINTS)),
                "invalid_request_error",
                "endpoint",
                "invalid_value",
            )
        if body["completion_window"] != "24h":
            return 400, error_body(
                f"Invalid value: '{body['completion_window']}'. Supported values are: '24h'.",
                "invalid_request_error",
                "completion_window",
                "invalid_value",
            )
        file = self.files.get(body["input_file_id"])
        if file is None:
            return _missing("file", body["input_file_id"])
        if file["purpose"] != "batch":
            return 400, error_body(
                "The file must be uploaded with purpose 'batch'.",
                "invalid_request_error",
                "input_file_id",
            )
        self.batch_creates += 1
        job_id = f"batch_{next(self._ids):06d}"
        self.batches[job_id] = {
            "id": job_id, "object": "batch", "endpoint": body["endpoint"], "errors": None,
            "input_file_id": body["input_file_id"], "completion_window": "24h",
            "status": "validating", "output_file_id": None, "error_file_id": None,
            "created_at": 0, "metadata": body.get("metadata"),
            "request_counts": {"total": 0, "completed": 0, "failed": 0}, "reads": 0,
        }  # fmt: skip
        return 200, self._public(self.batches[job_id])

    @staticmethod
    def _public(job: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in job.items() if k != "reads"}

    def _advance(self, job: dict[str, Any]) -> dict[str, Any]:
        """One read moves a job on: validating, in_progress (batch_polls reads),
        finalizing, then its outcome."""
        job["reads"] += 1
        if job["status"] == "validating":
            problems = self._validate(job)
            if problems:
                job["status"], job["errors"] = "failed", {"object": "list", "data": problems}
            else:
                job["status"] = "in_progress"
        elif job["status"] == "in_progress" and job["reads"] > self.batch_polls:
            job["status"] = "finalizing"
        elif job["status"] == "finalizing":
            self._finish(job, self.batch_outcome)
        elif job["status"] == "cancelling":
            self._finish(job, "cancelled")
        return job

    def _validate(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        """The input file's problems, as a failed job's `errors.data` lists them."""
        data = self.files[job["input_file_id"]]["data"]
        if len(data) > self.batch_max_bytes:
            return [
                _problem(
                    "file_too_large",
                    f"The input file is larger than the {self.batch_max_bytes} maximum.",
                )
            ]
        lines = [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
        if len(lines) > self.batch_max_requests:
            return [
                _problem(
                    "too_many_requests",
                    f"The input file has {len(lines)} requests; "
                    f"the most is {self.batch_max_requests}.",
                )
            ]
        seen: set[str] = set()
        models: set[str] = set()
        for number, text in enumerate(lines, 1):
            try:
                line = json.loads(text)
            except ValueError:
                return [_problem("invalid_json_line", "This line is not valid JSON.", number)]
            custom_id = line.get("custom_id") if isinstance(line, dict) else None
            if not isinstance(custom_id, str) or not custom_id:
                return [
                    _problem(
                        "missing_required_parameter", "Missing 'custom_id'.", number, "custom_id"
                    )
                ]
            if len(custom_id) > CUSTOM_ID_MAX:
                return [
                    _problem(
                        "invalid_value",
                        f"'custom_id' is longer than {CUSTOM_ID_MAX} characters.",
                        number,
                        "custom_id",
                    )
                ]
            if custom_id in seen:
                return [
                    _problem(
                        "duplicate_custom_id",
                        f"The custom_id '{custom_id}' is used more than once.",
                        number,
                        "custom_id",
                    )
                ]
            seen.add(custom_id)
            if line.get("method") != "POST":
                return [_problem("invalid_value", "'method' must be POST.", number, "method")]
            if line.get("url") != job["endpoint"]:
                return [
                    _problem(
                        "mismatched_endpoint",
                        f"The url {line.get('url')} does not match the batch's endpoint "
                        f"{job['endpoint']}.",
                        number,
                        "url",
                    )
                ]
            models.add(str((line.get("body") or {}).get("model")))
            if len(models) > 1:
                return [
                    _problem(
                        "mismatched_model",
                        "The provided input file must contain requests for a single model.",
                        number,
                        "body.model",
                    )
                ]
        job["request_counts"]["total"] = len(lines)
        return []

    def _finish(self, job: dict[str, Any], outcome: str) -> None:
        """Answer the lines (all if completed, none if failed, the first half otherwise)."""
        lines = [
            json.loads(t)
            for t in self.files[job["input_file_id"]]["data"].decode().splitlines()
            if t.strip()
        ]
        done = {"completed": len(lines), "failed": 0}.get(outcome, len(lines) // 2)
        outputs, errors = [], []
        for number, line in enumerate(lines):
            if number >= done:
                if outcome == "expired":
                    errors.append(
                        {
                            "id": f"batch_req_{number}",
                            "custom_id": line["custom_id"],
                            "response": None,
                            "error": {
                                "code": "batch_expired",
                                "message": "This request could not be executed before "
                                "the completion window expired.",
                            },
                        }
                    )
                continue
            seen = Seen(line["body"], {}, _colour(line["body"]))
            self.seen.append(seen)
            self._lock.release()  # reply() takes the lock itself
            try:
                reply = self.reply(seen, {"authorization": f"Bearer {self.api_key}"})
            finally:
                self._lock.acquire()
            result = {
                "id": f"batch_req_{number}",
                "custom_id": line["custom_id"],
                "response": {
                    "status_code": reply.status,
                    "request_id": f"req_{number}",
                    "body": reply.body or {},
                },
                "error": None,
            }
            (outputs if reply.status == 200 else errors).append(result)
        for kind, results in (("output_file_id", outputs), ("error_file_id", errors)):
            if results:
                file_id = f"file-{next(self._ids):06d}"
                data = "".join(json.dumps(r) + "\n" for r in results).encode()
                self.files[file_id] = {
                    "id": file_id,
                    "object": "file",
                    "bytes": len(data),
                    "created_at": 0,
                    "filename": f"{kind}.jsonl",
                    "purpose": "batch_output",
                    "status": "processed",
                    "data": data,
                }
                job[kind] = file_id
        job["status"] = outcome
        job["request_counts"] = {
            "total": len(lines),
            "completed": len(outputs),
            "failed": len(errors),
        }

    def _cancel(self, job: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if job["status"] in ("completed", "failed", "expired", "cancelled"):
            return 409, error_body(
                f"Cannot cancel a batch with status '{job['status']}'.", "invalid_request_error"
            )
        job["status"] = "cancelling"
        return 200, self._public(job)


def _missing(kind: str, name: str) -> tuple[int, dict[str, Any]]:
    return 404, error_body(f"No such {kind}: {name}", "invalid_request_error", None, None)


def _problem(
    code: str, message: str, line: int | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"code": code, "message": message, "param": param, "line": line}


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
    for message in body.get("messages", []):
        content = message.get("content")
        for part in content if isinstance(content, list) else []:
            url = (part.get("image_url") or {}).get("url", "") if isinstance(part, dict) else ""
            if found := DATA_URI.match(url):
                return colour_of(decode(found.group("data")))[1]
    return None


def start(state: FakeOpenAI) -> Callable[[], None]:
    class Handler(server.Handler):
        def do_GET(self) -> None:
            self._batch_api("GET", b"")

        def _batch_api(self, method: str, raw: bytes) -> None:
            route = self.path.split("?", 1)[0]
            status, body = state.route(method, route, raw, self.lowered_headers())
            if isinstance(body, bytes):
                self.send_bytes(status, body)
            else:
                self.send_json(status, body)

        def do_POST(self) -> None:
            raw = self.read_body()
            if self.path.split("?", 1)[0] != ROUTE:
                self._batch_api("POST", raw)
                return
            body = json.loads(raw or b"{}")
            headers = self.lowered_headers()
            seen = Seen(body, headers, _colour(body))
            with state._lock:
                state.seen.append(seen)
            if state.latency:
                state._stopping.wait(state.latency)
            answer = state.reply(seen, headers)
            if answer.hang:
                state._stopping.wait(answer.hang)
            if answer.drop or state._stopping.is_set():
                self.hang_up()
                return
            self.send_json(answer.status, answer.body or {}, answer.headers, cut=answer.cut)

    root, stop = server.serve(Handler, state._stopping)
    state.url = f"{root}/v1"
    return stop


__all__ = ["OPENAI_TEST_KEY", "FakeOpenAI", "Reply", "error_body", "start"]
