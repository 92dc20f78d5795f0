"""Any OpenAI-compatible Chat Completions endpoint: OpenAI, Ollama, vLLM, LM Studio,
llama.cpp's server, OpenRouter. The only module that imports the `openai` SDK (lazily).

What is sent: one user message with the prompt and the prepared image as a
`data:image/jpeg;base64,...` URI (`detail: "low"`), to the base URL and nowhere else.
The answer format is negotiated like any optional setting and remembered per endpoint
and model: a strict JSON schema, else `json_object`, else plain text; validation is the
same strict parsing as always.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from emotag.errors import (
    AnswerError,
    EmotagError,
    FatalAPIError,
    NetworkError,
    Throttled,
    TransientAPIError,
)
from emotag.providers import (
    JobState,
    JobStatus,
    Provider,
    ProviderSpec,
    Setup,
    is_loopback,
    redirected,
)
from emotag.providers.answers import Answer, Token, read_text, usable
from emotag.providers.negotiation import Negotiator, named_setting
from emotag.providers.question import DEFAULT_PROMPT, STRICT_SCHEMA
from emotag.providers.seam import Price

if TYPE_CHECKING:
    from openai import AsyncOpenAI, OpenAI
    from openai.types import Batch

    from emotag.files.images import Prepared

KEY_VAR: Final = "OPENAI_API_KEY"
ENDPOINT: Final = "api.openai.com"
DEFAULT_MODEL: Final = "gpt-4.1-mini"
PRICING: Final = "https://developers.openai.com/api/docs/pricing"
ROUTE: Final = "/v1/chat/completions"
# The Batch API's limits per input file, and its states in emotag's words.
BATCH_MAX_REQUESTS: Final = 50_000
BATCH_MAX_BYTES: Final = 200_000_000
BATCH_STATES: Final[dict[str, JobState]] = {
    "validating": "pending",
    "in_progress": "running",
    "finalizing": "running",
    "completed": "succeeded",
    "failed": "failed",
    "expired": "expired",
    "cancelling": "running",
    "cancelled": "cancelled",
}

# Optional settings, in the order the answer format falls back.
JSON_SCHEMA: Final = "json_schema"
JSON_OBJECT: Final = "json_object"
LOGPROBS: Final = "logprobs"
CHOICES: Final = "choices"  # n > 1: several answers in one request (--votes)
# The answer's length cap: `max_completion_tokens` where the server takes it (OpenAI's
# spec deprecates `max_tokens`, which reasoning models refuse), else `max_tokens` (older
# compatible servers), else none. Reasoning models also refuse any temperature but their
# default.
MAX_COMPLETION_TOKENS: Final = "max_completion_tokens"
MAX_TOKENS: Final = "max_tokens"
TEMPERATURE: Final = "temperature"
OPTIONAL_SETTINGS: Final = (
    JSON_SCHEMA,
    JSON_OBJECT,
    LOGPROBS,
    MAX_COMPLETION_TOKENS,
    MAX_TOKENS,
    TEMPERATURE,
)
# A cap that leaves a reasoning model room to think before its short answer: output is
# billed as used, so it costs nothing where the model does not think.
ANSWER_CAP: Final = 512
_SETTING_WORDS: Final = {
    JSON_SCHEMA: ("json_schema", "response_format", "structured output", "strict"),
    JSON_OBJECT: ("json_object", "response_format"),
    LOGPROBS: ("logprobs", "logprob"),
    CHOICES: ("'n'", "n must be", "multiple choices", "number of choices", " n "),
    MAX_COMPLETION_TOKENS: ("max_completion_tokens",),
    MAX_TOKENS: ("max_tokens",),
    TEMPERATURE: ("temperature",),
}
TOP_LOGPROBS: Final = 5
JSON_HINT: Final = ' Answer with JSON: {"faces": "none|one|several", "emotion": "<label>"}.'


@dataclass
class OpenAIProvider:
    """Sends one image per call with the settings the server is known to accept."""

    client: AsyncOpenAI
    model: str
    settings: Negotiator
    endpoint: str = ENDPOINT
    prompt: str = DEFAULT_PROMPT
    service: str = "OpenAI-compatible"
    votes: int = 1
    reports_model: bool = True  # the `model` column holds the name the server reports
    _answered: bool = False  # an answer of any kind came back in this run

    async def label(self, image: Prepared, n: int = 1) -> list[Answer]:
        import openai

        while True:
            sent = self._settings(n)
            try:
                # The raw JSON, not the SDK's model of it: read as it came, a field or
                # value newer than the installed SDK is no failure (`read_completion`).
                raw = await self.client.chat.completions.with_raw_response.create(
                    **self._request(image, n, sent)
                )
            except openai.APIStatusError as exc:
                refused = _refused_setting(exc, sent)
                if refused is None:
                    raise map_api_error(
                        exc, self.model, self.endpoint, answered=self._answered
                    ) from None
                self.settings.refuse(refused)
                continue
            except openai.APITimeoutError as exc:
                raise TransientAPIError(f"no answer: {exc}") from exc
            except openai.APIConnectionError as exc:
                raise NetworkError(f"{type(exc).__name__}: {exc.__cause__ or exc}") from exc
            self.settings.accept()
            self._answered = True
            answers = read_completion(raw.text, n)
            self.settings.note_reported(answers[0].model_version)
            return answers

    async def aclose(self) -> None:
        await self.client.close()

    def request_body(self, image: Prepared) -> dict[str, Any]:
        """The body of one request with the settings in use, for a Batch API line."""
        return self._request(image, 1, self._settings(1))

    def _settings(self, n: int) -> set[str]:
        active = self.settings.active
        return active if n > 1 else active - {CHOICES}

    def _request(self, image: Prepared, n: int, sent: set[str]) -> dict[str, Any]:
        data = base64.b64encode(image.data).decode()
        prompt = self.prompt if JSON_SCHEMA in sent else self.prompt + JSON_HINT
        content = [
            {"type": "text", "text": prompt},
            {
                "type": "image_url",
                "image_url": {"url": f"data:{image.mime_type};base64,{data}", "detail": "low"},
            },
        ]
        request: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": content}],
        }
        if MAX_COMPLETION_TOKENS in sent:
            request["max_completion_tokens"] = ANSWER_CAP
        elif MAX_TOKENS in sent:
            request["max_tokens"] = ANSWER_CAP
        if TEMPERATURE in sent and self.votes == 1:
            request["temperature"] = 0
        if JSON_SCHEMA in sent:
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "face_emotion", "schema": STRICT_SCHEMA, "strict": True},
            }
        elif JSON_OBJECT in sent:
            request["response_format"] = {"type": "json_object"}
        if LOGPROBS in sent:
            request["logprobs"] = True
            request["top_logprobs"] = TOP_LOGPROBS
        if CHOICES in sent and n > 1:
            request["n"] = n
        return request


def estimate_input_tokens(model: str, prompt: str, width: int, height: int) -> int:
    """OpenAI bills a `detail: low` image at 85 tokens, whatever its size (a local server
    bills nothing); the prompt by the usual four characters a token."""
    return 85 + len(prompt) // 4


def read_completion(reply: str | dict[str, Any], n: int = 0) -> list[Answer]:
    """Every usable choice of the first `n` (all with 0; the usage is the first one's) of
    a Chat Completions reply, its JSON text or that parsed; AnswerError when none is.

    Read from the JSON, as the Gemini reader is: the SDK's types refuse what is newer
    than them (a batch result line with a new `finish_reason` crashed every fetch)."""
    try:
        data: dict[str, Any] = json.loads(reply) if isinstance(reply, str) else reply
        usage = data.get("usage") or {}
        choices = list(data.get("choices") or [])
        if not choices:
            raise AnswerError("no answer")
        read = functools.partial(_read_choice, model=str(data.get("model") or ""))
        return usable(
            choices,
            read,
            int(usage.get("prompt_tokens") or 0),
            int(usage.get("completion_tokens") or 0),
            limit=n,
        )
    except (AttributeError, TypeError, ValueError, KeyError) as exc:
        raise AnswerError(f"unreadable answer: {type(exc).__name__}: {exc}") from None


def _read_choice(choice: dict[str, Any], model: str) -> Answer:
    message = choice.get("message") or {}
    if refusal := message.get("refusal"):
        raise AnswerError(f"refused by the model: {' '.join(str(refusal).split())[:80]}")
    finish = choice.get("finish_reason")
    if finish == "content_filter":
        raise AnswerError("answer blocked by the content filter")
    if finish == "length":
        raise AnswerError("answer cut off (length)")
    if finish != "stop":  # null, or a reason newer than emotag: not a finished answer
        raise AnswerError(f"answer not finished (finish_reason {finish!r})")
    content = message.get("content") or ""
    if not isinstance(content, str):
        raise AnswerError("unreadable answer: its content is not text")
    tokens = [
        Token(
            str(t["token"]),
            None if t.get("logprob") is None else float(t["logprob"]),
            tuple((str(a["token"]), float(a["logprob"])) for a in t.get("top_logprobs") or []),
        )
        for t in (choice.get("logprobs") or {}).get("content") or []
    ]
    return read_text(content, tokens, model)


# What an error answer is about, read from OpenAI's documented codes and the wording of
# the compatible servers (vLLM, Ollama, LM Studio, llama.cpp). Only the image's own
# problems cost the image; the account's and the model's stop the run, blaming none.
_BILLING: Final = (
    "insufficient_quota",
    "credit_balance_exhausted",
    "billing_hard_limit_reached",
    "billing_not_active",
    "access_terminated",
)
_REGION: Final = ("unsupported_country_region_territory", "country, region, or territory")
_IMAGE_PROBLEM: Final = (
    "invalid_image",
    "image_parse_error",
    "invalid image",
    "not a valid image",
    "not represent a valid image",
    "uploaded an unsupported image",
    "content_policy_violation",
    "image may contain content",
)
_NO_VISION: Final = (
    "only supported by certain models",
    "not a multimodal model",
    "does not support image",
    "do not support image",
    "doesn't support image",
    "does not support vision",
    "image input is not supported",
    "images are not supported",
    "multimodal not supported",
    "missing data required for image input",
    "mmproj",
)
# A request emotag built wrong (the same for every image): never a setting to drop.
_BAD_REQUEST: Final = ("invalid schema", "invalid_json_schema", "must contain the word 'json'")
_RESET_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def map_api_error(exc: Any, model: str, endpoint: str, *, answered: bool) -> EmotagError:
    """Sort an `openai` APIStatusError like the Gemini ones. `answered`: this endpoint has
    answered a request of this run, so an unexplained 400 may be this image's alone."""
    code = int(getattr(exc, "status_code", 0) or 0)
    body = getattr(exc, "body", None)
    # The server's own words; the SDK's message adds "Error code: 400 - " before them.
    said_by_server = body.get("message") if isinstance(body, dict) else None
    message = " ".join(str(said_by_server or getattr(exc, "message", "") or exc).split())[:200]
    kinds = {str(getattr(exc, name, "") or "").lower() for name in ("code", "type")}
    said = f"{message.lower()} {' '.join(kinds)}"
    if 300 <= code < 400:
        return redirected(code, endpoint)
    if any(kind in kinds for kind in _BILLING):
        return FatalAPIError(
            f"{endpoint} refused the request for the account's credit ({code} {message})",
            then="Add credit or raise the spend limit (for OpenAI: platform.openai.com, "
            "Settings, Billing), then run the same command",
        )
    if code == 429:
        return Throttled(f"429 {message}", retry_after=_retry_after(exc), code=code)
    if code in (408, 409) or code >= 500:
        return TransientAPIError(f"{code} {message}", code=code)
    if _says(said, _REGION):
        return FatalAPIError(
            f"{endpoint} does not serve requests from this country or region ({code}: "
            f"{message}). Run from a supported location or use another --provider."
        )
    if code in (401, 403):
        # Not the server's words: a server may quote the key it was sent.
        return FatalAPIError(
            f"{endpoint} rejected the key ({code}). Check {KEY_VAR}, or run "
            "'emotag key status --provider openai'."
        )
    if code == 404 or "model_not_found" in kinds:
        return FatalAPIError(
            f"Model '{model}' was not found at {endpoint} ({code}). Choose another with "
            "--model (for a local server, the name it lists, e.g. 'ollama list')."
        )
    if _says(said, _IMAGE_PROBLEM):
        return AnswerError(f"image refused: {code} {message}")
    if _says(said, _NO_VISION):
        return FatalAPIError(
            f"Model '{model}' at {endpoint} takes no images ({code}: {message}). Choose a "
            "vision model with --model (e.g. gpt-4.1-mini; on Ollama, one such as "
            "qwen2.5vl or llava)."
        )
    if _says(said, _BAD_REQUEST):
        return FatalAPIError(
            f"{endpoint} refused the request emotag built ({code}: {message}). This is a "
            "bug in emotag: please report it with this line."
        )
    if not answered:
        return FatalAPIError(
            f"{endpoint} refused the request before answering any ({code}: {message}); no "
            "image was blamed. Check --model and --base-url."
        )
    return AnswerError(f"request rejected: {code} {message}")


def _says(text: str, phrases: tuple[str, ...]) -> bool:
    """`text` (lower case) holds one of `phrases`."""
    return any(phrase in text for phrase in phrases)


def _retry_after(exc: Any) -> float | None:
    """The server's wait: `retry-after-ms`, `retry-after` (seconds), else OpenAI's
    `x-ratelimit-reset-requests` / `-tokens` ("1s", "6m0s", "120ms"), the longer one."""
    response = getattr(exc, "response", None)
    headers = response.headers if response is not None else {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return float(headers[name]) * scale
        except (KeyError, ValueError):
            continue
    resets = [
        _duration(headers[name])
        for name in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")
        if name in headers
    ]
    known = [value for value in resets if value is not None]
    return max(known) if known else None


def _duration(text: str) -> float | None:
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        return None
    return sum(float(number) * _RESET_UNITS[unit] for number, unit in parts)


def _refused_setting(exc: Any, sent: set[str]) -> str | None:
    message = str(getattr(exc, "message", "") or exc)
    if int(getattr(exc, "status_code", 0) or 0) not in (400, 422) or _says(
        message.lower(), _BAD_REQUEST
    ):
        return None
    return named_setting(message, sent, _SETTING_WORDS)


def make_client(api_key: str, *, base_url: str | None, timeout: float) -> AsyncOpenAI:
    """The SDK client; its own retries stay off because emotag's engine owns retrying, and
    it follows no redirect (the SDK's default would re-send the image elsewhere)."""
    from openai import AsyncOpenAI, DefaultAsyncHttpxClient

    http = DefaultAsyncHttpxClient(follow_redirects=False, timeout=timeout)
    return AsyncOpenAI(
        api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0, http_client=http
    )


def make_batch_client(api_key: str, *, base_url: str | None, timeout: float) -> OpenAI:
    from openai import DefaultHttpxClient, OpenAI

    http = DefaultHttpxClient(follow_redirects=False, timeout=timeout)
    return OpenAI(
        api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0, http_client=http
    )


@dataclass
class OpenAIBatches:
    """The Files (`purpose=batch`) and Batch API calls of batch mode, errors in emotag's
    terms. A compatible server without them (Ollama, vLLM) gets one line saying so."""

    client: OpenAI
    model: str
    endpoint: str = ENDPOINT
    provider: OpenAIProvider | None = None  # builds the lines; not needed to follow jobs
    max_requests: int = BATCH_MAX_REQUESTS
    max_bytes: int = BATCH_MAX_BYTES

    def line(self, key: str, image: Prepared) -> dict[str, Any]:
        assert self.provider is not None, "lines are built from a run's provider"
        body = self.provider.request_body(image)
        return {"custom_id": key, "method": "POST", "url": ROUTE, "body": body}

    def upload(self, path: str, display_name: str) -> str:
        with self._errors("upload the batch file", first=True), open(path, "rb") as handle:
            return self.client.files.create(file=handle, purpose="batch").id

    def create(self, file: str, display_name: str) -> tuple[str, JobStatus]:
        with self._errors("create the batch job", first=True):
            job = self.client.batches.create(
                input_file_id=file,
                endpoint=ROUTE,
                completion_window="24h",
                metadata={"emotag_job": display_name},
            )
        return job.id, _status(job)

    def status(self, name: str) -> JobStatus:
        with self._errors(f"read the batch job {name}"):
            return _status(self.client.batches.retrieve(name))

    def find(self) -> dict[str, tuple[str, JobStatus]]:
        with self._errors("list the batch jobs"):
            return {
                (job.metadata or {}).get("emotag_job", ""): (job.id, _status(job))
                for job in self.client.batches.list(limit=100)
            }

    def cancel(self, name: str) -> None:
        with self._errors(f"cancel the batch job {name}"):
            self.client.batches.cancel(name)

    def results(self, name: str) -> dict[str, Answer | str]:
        """The output file's answers and the error file's reasons, by `custom_id`."""
        with self._errors(f"read the batch job {name}"):
            job = self.client.batches.retrieve(name)
        answers: dict[str, Answer | str] = {}
        for file in (job.output_file_id, job.error_file_id):
            if not file:
                continue
            with self._errors(f"download the batch results {file}"):
                text = self.client.files.content(file).text
            for line in text.splitlines():
                try:
                    item = json.loads(line) if line.strip() else None
                except ValueError:
                    item = None  # its request, unnamed, fails with the job's reason
                if isinstance(item, dict):
                    answers[str(item.get("custom_id", ""))] = _batch_result(item)
        return answers

    def close(self) -> None:
        self.client.close()

    @contextmanager
    def _errors(self, doing: str, *, first: bool = False) -> Iterator[None]:
        """`first`: a call that starts batch mode, where a 404 means no Batch API here."""
        import openai

        try:
            yield
        except openai.APIStatusError as exc:
            if exc.status_code == 404 and first:
                raise FatalAPIError(
                    f"{self.endpoint} has no Batch API (404 when asked to {doing}); label "
                    "interactively (leave out --batch)."
                ) from None
            if exc.status_code == 404:
                raise FatalAPIError(
                    f"{self.endpoint} does not know what emotag asked for (404 when asked to "
                    f"{doing}): batch jobs and their files may have expired. Submit the images "
                    "again with 'emotag tag DIR --batch --retry-failed' or label them "
                    "interactively."
                ) from None
            mapped = map_api_error(exc, self.model, self.endpoint, answered=True)
            if isinstance(mapped, FatalAPIError):
                raise mapped from None
            raise FatalAPIError(f"{self.endpoint} refused to {doing} ({mapped}).") from None
        except openai.APIConnectionError as exc:
            raise FatalAPIError(
                f"Cannot reach {self.endpoint} ({type(exc).__name__}: {exc.__cause__ or exc}); "
                "nothing is lost, run the same command again."
            ) from None


def _status(job: Batch) -> JobStatus:
    errors = job.errors.data if job.errors and job.errors.data else []
    detail = "; ".join(
        f"{e.code or 'error'}{f' (line {e.line})' if e.line else ''}: {e.message or ''}"
        for e in errors[:3]
    )
    return JobStatus(BATCH_STATES.get(job.status, "pending"), detail)


def _batch_result(item: dict[str, Any]) -> Answer | str:
    """One output or error line: the answer, or why there is none (any shape a line may
    have: it is read as JSON, never trusted to be what the documentation says)."""
    if error := item.get("error"):
        if isinstance(error, dict):
            error = f"{error.get('code', '')} {error.get('message', '')}"
        return f"batch request failed: {' '.join(str(error).split())[:200]}".strip()
    response = item.get("response") or {}
    body = response.get("body") if isinstance(response, dict) else None
    status = response.get("status_code") if isinstance(response, dict) else None
    if status != 200 or not isinstance(body, dict):
        problem = body.get("error") if isinstance(body, dict) else None
        said = problem.get("message", "") if isinstance(problem, dict) else ""
        return f"batch request failed: {status} {said}".strip()
    try:
        return read_completion(body, 1)[0]
    except AnswerError as exc:
        return str(exc)


def _build(setup: Setup) -> OpenAIProvider:
    client = make_client(setup.key, base_url=setup.base_url, timeout=setup.timeout)
    return OpenAIProvider(client, **setup.provider_fields(OPTIONAL_SETTINGS, CHOICES))


def _batches(setup: Setup, provider: Provider | None) -> OpenAIBatches:
    client = make_batch_client(setup.key, base_url=setup.base_url, timeout=setup.timeout)
    lines = provider if isinstance(provider, OpenAIProvider) else None
    return OpenAIBatches(client, setup.model, setup.endpoint, lines)


def _price(model: str, inp: float, out: float) -> Price:
    return Price(model, inp, out, 0.5, "2026-06-21", PRICING)


SPEC: Final = ProviderSpec(
    name="openai",
    about="OpenAI or any OpenAI-compatible server",
    key_var=KEY_VAR,
    base_url_var="OPENAI_BASE_URL",
    default_endpoint=ENDPOINT,
    default_model=DEFAULT_MODEL,
    build=_build,
    input_tokens=estimate_input_tokens,
    prices=(
        _price("gpt-4.1", 2.00, 8.00),
        _price("gpt-4.1-mini", 0.40, 1.60),
        _price("gpt-4.1-nano", 0.10, 0.40),
        _price("gpt-4o-mini", 0.15, 0.60),
    ),
    features=frozenset({"logprobs", "several_answers"}),
    batches=_batches,
    needs_key=lambda base_url: not is_loopback(base_url),
)
