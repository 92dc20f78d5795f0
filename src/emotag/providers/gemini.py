"""Gemini: build one labelling request, send it, read the answer, sort the errors.

The only module that imports google-genai, lazily, so `emotag --help` stays fast.
"""

from __future__ import annotations

import base64
import functools
import importlib
import json
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from emotag.errors import (
    AnswerError,
    EmotagError,
    FatalAPIError,
    NetworkError,
    QuotaSpent,
    Throttled,
    TransientAPIError,
)
from emotag.providers import JobState, JobStatus, Provider, ProviderSpec, Setup, redirected
from emotag.providers.answers import Answer, Token, read_text, usable
from emotag.providers.negotiation import Negotiator, named_setting
from emotag.providers.question import DEFAULT_PROMPT, RESPONSE_SCHEMA
from emotag.providers.seam import Price

if TYPE_CHECKING:
    import aiohttp
    from google import genai
    from google.genai import types

    from emotag.files.images import Prepared

BLOCKING_FINISH_REASONS: Final = frozenset(
    {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "IMAGE_SAFETY", "RECITATION"}
)
RETRYABLE_CODES: Final = frozenset({408, 500, 502, 503, 504})
KEY_VAR: Final = "AI_STUDIO_API_KEY"
ENDPOINT: Final = "generativelanguage.googleapis.com"
DEFAULT_MODEL: Final = "gemini-3.5-flash-lite"
PRICING: Final = "https://ai.google.dev/gemini-api/docs/pricing"
MAX_JOB_BYTES: Final = 1_500_000_000  # under the Files API's 2 GB per file
# The Batch API's job states in emotag's words.
JOB_STATES: Final[dict[str, JobState]] = {
    "JOB_STATE_PENDING": "pending",
    "JOB_STATE_QUEUED": "pending",
    "JOB_STATE_RUNNING": "running",
    "JOB_STATE_SUCCEEDED": "succeeded",
    "JOB_STATE_PARTIALLY_SUCCEEDED": "succeeded",
    "JOB_STATE_FAILED": "failed",
    "JOB_STATE_CANCELLING": "running",
    "JOB_STATE_CANCELLED": "cancelled",
    "JOB_STATE_EXPIRED": "expired",
}

# Optional request settings a model may refuse, and the words its 400 message uses.
OPTIONAL_SETTINGS: Final = ("logprobs", "thinking", "media_resolution")
# Several answers in one request (input billed once): Gemini 2.5 takes up to 8, Gemini 3
# answers 400 "Multiple candidates is not enabled". Wanted only with --votes.
CANDIDATES: Final = "candidates"
MAX_CANDIDATES: Final = 8
_SETTING_WORDS: Final = {
    "logprobs": ("logprob",),
    "thinking": ("thinking",),
    "media_resolution": ("media_resolution", "mediaresolution", "media resolution"),
    CANDIDATES: ("multiple candidates", "candidate_count", "candidatecount", "candidate count"),
}

Subject = Literal["model", "file", "job"]


@dataclass(frozen=True, slots=True)
class Family:
    """Per-model-family request settings (docs/architecture.md, "Model families").

    Thinking tokens count against maxOutputTokens: where a model cannot turn thinking off
    (2.5 Pro's least budget is 128; Gemini 3 Pro has no MINIMAL level), the cap leaves
    room for it, or the answer is cut off with MAX_TOKENS and no text.
    """

    thinking: dict[str, Any] | None
    max_output_tokens: int
    temperature: float | None  # None: the model's default (Google's advice for Gemini 3)


def family(model: str) -> Family:
    name = model.removeprefix("models/")
    if name.startswith(("gemini-1", "gemini-2.0")):
        return Family(None, 64, 0.0)
    if name.startswith("gemini-2"):
        if "pro" in name:
            return Family({"thinking_budget": 128}, 1024, 0.0)
        return Family({"thinking_budget": 0}, 64, 0.0)
    if "pro" in name:
        return Family({"thinking_level": "LOW"}, 4096, None)
    return Family({"thinking_level": "MINIMAL"}, 512, None)


@dataclass
class GeminiProvider:
    """Sends one image per call with the settings the model is known to accept."""

    client: genai.Client
    model: str
    settings: Negotiator
    endpoint: str = ENDPOINT
    prompt: str = DEFAULT_PROMPT
    service: str = "Gemini"
    reports_model: bool = False
    votes: int = 1  # > 1: independent answers at the model's default temperature
    session: aiohttp.ClientSession | None = None  # emotag's, closed with the client
    _answered: bool = False  # an answer of any kind came back in this run
    _configs: dict[tuple[frozenset[str], int], dict[str, Any]] = field(default_factory=dict)

    async def label(self, image: Prepared, n: int = 1) -> list[Answer]:
        """Up to `n` answers: several in one request where the model takes a candidate
        count, else one.

        The request is the REST body `request_json` builds, sent by the SDK's own HTTP
        client (its key, base URL, timeout, headers and error classes). Its config is
        turned into the wire form once per combination of settings rather than by the
        SDK's converters on every call, which were most of emotag's CPU per image
        (docs/performance.md)."""
        from google.genai import errors

        path = f"{_model_path(self.model)}:generateContent"
        while True:
            try:
                response = await self.client.aio._api_client.async_request(
                    "post", path, self._body(image, n)
                )
            except errors.APIError as exc:
                refused = _refused_setting(exc, self._sent(n))
                if refused is None:
                    raise map_api_error(exc, "model", self.model, answered=self._answered) from None
                self.settings.refuse(refused)
                continue
            except transport_errors() as exc:
                if _reached_the_model(exc):
                    raise TransientAPIError(_network_reason(exc)) from exc
                raise NetworkError(_network_reason(exc)) from exc
            self.settings.accept()
            self._answered = True
            return read_reply(response.body or "{}", n)

    async def aclose(self) -> None:
        await self.client.aio.aclose()
        if self.session is not None:
            await self.session.close()  # the SDK leaves a caller's session open

    def request_json(self, image: Prepared) -> dict[str, Any]:
        """The REST body of the same request, for a Batch API input file (no logprobs:
        batch answers are not worth a per-line refusal on keys that cannot have them)."""
        body = self._body(image, 1)
        body["generationConfig"] = {
            k: v for k, v in body["generationConfig"].items() if k != "responseLogprobs"
        }
        return body

    def _body(self, image: Prepared, n: int) -> dict[str, Any]:
        """`generateContent`'s REST body: the image, the prompt, the settings in use."""
        data = base64.b64encode(image.data).decode()
        parts = [{"inlineData": {"mimeType": image.mime_type, "data": data}}, {"text": self.prompt}]
        return {"contents": [{"role": "user", "parts": parts}], "generationConfig": self._config(n)}

    def _sent(self, n: int) -> set[str]:
        """The optional settings a request for `n` answers carries."""
        return self.settings.active if n > 1 else self.settings.active - {CANDIDATES}

    def _config(self, n: int) -> dict[str, Any]:
        """The wire form of the config for the settings still in use, built once per
        combination (the SDK's types check it; they are not run again per request)."""
        sent = self._sent(n)
        key = (frozenset(sent), min(n, MAX_CANDIDATES) if CANDIDATES in sent else 1)
        if key not in self._configs:
            config = self._build_config(*key)
            self._configs[key] = config.model_dump(mode="json", by_alias=True, exclude_none=True)
        return self._configs[key]

    def _build_config(self, active: frozenset[str], count: int) -> types.GenerateContentConfig:
        from google.genai import types

        settings = family(self.model)
        config = types.GenerateContentConfig(
            temperature=settings.temperature if self.votes == 1 else None,
            response_mime_type="application/json",
            response_json_schema=RESPONSE_SCHEMA,
            max_output_tokens=settings.max_output_tokens,
        )
        if "logprobs" in active:
            config.response_logprobs = True
        if "media_resolution" in active:
            config.media_resolution = types.MediaResolution.MEDIA_RESOLUTION_LOW
        if "thinking" in active and settings.thinking is not None:
            config.thinking_config = types.ThinkingConfig(**settings.thinking)
        if count > 1:
            config.candidate_count = count
        return config


def make_client(
    api_key: str,
    *,
    base_url: str | None = None,
    timeout: float = 60.0,
    session: aiohttp.ClientSession | None = None,
) -> genai.Client:
    """The SDK client, on aiohttp (google-genai[aiohttp], the SDK's faster stack at high
    concurrency, docs/performance.md),
    through `session` where given (`sessions.own_session`), with the environment's proxy.

    One attempt per call: emotag's engine owns retrying. That also turns off the SDK's
    own retry of a dropped aiohttp connection, which slept 1-10 s and was never counted.
    """
    from google import genai
    from google.genai import types

    options = types.HttpOptions(
        timeout=int(timeout * 1000),
        retry_options=types.HttpRetryOptions(attempts=1),
        aiohttp_client=session,
    )
    if base_url:
        options.base_url = base_url
    from emotag.providers.gemini_sessions import environment_proxy

    # No request follows a redirect: aiohttp's (live) and httpx's (Files, Batch) both would.
    options.async_client_args = {"allow_redirects": False}
    options.client_args = {"follow_redirects": False}
    if proxy := environment_proxy(base_url or f"https://{ENDPOINT}"):
        options.async_client_args["proxy"] = proxy
    return genai.Client(api_key=api_key, http_options=options)


def read_reply(reply: str | dict[str, Any], n: int = 0) -> list[Answer]:
    """Every usable candidate of a generateContent reply, its JSON text or that parsed
    (the usage is the first one's); AnswerError for blocked, cut-off, off-list or
    unreadable replies.

    Read from the JSON, not through the SDK's response type: that type refuses any field
    newer than the installed SDK (`extra="forbid"`; the SDK's own calls strip such fields
    first, privately), and the API adds fields when it likes. Validating it also cost
    CPU on every request (docs/performance.md)."""
    try:
        data: dict[str, Any] = json.loads(reply) if isinstance(reply, str) else reply
        usage = data.get("usageMetadata") or {}
        tokens_in = int(usage.get("promptTokenCount") or 0)
        tokens_out = int(usage.get("candidatesTokenCount") or 0) + int(
            usage.get("thoughtsTokenCount") or 0
        )
        candidates = list(data.get("candidates") or [])
        if not candidates:
            reason = (data.get("promptFeedback") or {}).get("blockReason")
            raise AnswerError(f"blocked by the API: {reason or 'no answer'}")
        version = str(data.get("modelVersion") or "")
        read = functools.partial(_read_candidate, model_version=version)
        return usable(candidates, read, tokens_in, tokens_out, limit=n)
    except (AttributeError, TypeError, ValueError) as exc:  # a shape no API version sends
        raise AnswerError(f"unreadable answer: {type(exc).__name__}: {exc}") from None


def _read_candidate(candidate: dict[str, Any], model_version: str) -> Answer:
    finish = str(candidate.get("finishReason") or "")
    if finish in BLOCKING_FINISH_REASONS:
        raise AnswerError(f"answer blocked by the API: {finish}")
    if finish == "MAX_TOKENS":
        raise AnswerError("answer cut off (MAX_TOKENS)")
    parts = (candidate.get("content") or {}).get("parts") or []
    text = "".join(p["text"] for p in parts if p.get("text") and not p.get("thought"))
    return read_text(text, list(_tokens(candidate)), model_version)


def _tokens(candidate: dict[str, Any]) -> Iterator[Token]:
    result = candidate.get("logprobsResult") or {}
    top = result.get("topCandidates") or []
    for index, chosen in enumerate(result.get("chosenCandidates") or []):
        alternatives: tuple[tuple[str, float], ...] = ()
        if index < len(top):
            alternatives = tuple(
                (c.get("token") or "", float(c["logProbability"]))
                for c in top[index].get("candidates") or []
                if c.get("logProbability") is not None
            )
        logprob = chosen.get("logProbability")
        yield Token(
            chosen.get("token") or "", None if logprob is None else float(logprob), alternatives
        )


def _model_path(model: str) -> str:
    """`models/NAME` as the REST path wants it (a tuned model's `tunedModels/...` as is)."""
    return model if "/" in model else f"models/{model}"


def map_api_error(exc: Any, subject: Subject, name: str, *, answered: bool = True) -> EmotagError:
    """Sort an SDK APIError: fatal (stop the run), throttled or transient (retry), or about
    this one image. `subject` is what the request was about: the model, a file or a job.
    `answered`: the API has answered a request of this run, so an unexplained 400 may be
    this image's alone; before that, it is the request's shape, the same for every image."""
    code = int(getattr(exc, "code", 0) or 0)
    status = str(getattr(exc, "status", "") or "")
    message = " ".join(str(getattr(exc, "message", "") or "").split())
    details = getattr(exc, "details", None)
    if 300 <= code < 400:
        return redirected(code, "The Gemini API")
    if code == 429:
        if daily := _daily_quota(details):
            return QuotaSpent(f"The daily request quota of {name} is spent ({daily})")
        return Throttled(f"429 {status}".strip(), retry_after=retry_delay(details), code=code)
    if code in RETRYABLE_CODES:
        return TransientAPIError(
            f"{code} {status}".strip(), retry_after=retry_delay(details), code=code
        )
    if code == 404:
        return _not_found(subject, name)
    if status == "FAILED_PRECONDITION":
        return FatalAPIError(f"The Gemini API refused the request: {message or status}")
    key_problem = code == 401 or (code == 403 and subject == "model")
    if key_problem or (code in (400, 403) and _is_key_problem(message, details)):
        return FatalAPIError(
            f"The API rejected the key ({code} {status}). Check {KEY_VAR}, "
            "or run 'emotag key status' to see which key is used."
        )
    if code == 403:
        return FatalAPIError(
            f"Permission denied for the {subject} {name} (403): {message or status}"
        )
    if code == 400 and not answered and "image" not in message.lower():
        return FatalAPIError(
            f"The Gemini API refused the request before answering any ({code} {status}: "
            f"{message[:200]}); no image was blamed. Check --model and the base URL, or "
            "upgrade emotag if the API no longer takes what it sends"
        )
    return AnswerError(f"request rejected: {code} {status} {message}".strip())


def _not_found(subject: Subject, name: str) -> FatalAPIError:
    if subject == "model":
        return FatalAPIError(
            f"Model '{name}' was not found (404): it may be retired or misspelt. "
            f"Choose another with --model or EMOTAG_MODEL, e.g. {DEFAULT_MODEL}."
        )
    return FatalAPIError(
        f"The batch {subject} {name} was not found (404): batch jobs and their files expire "
        "48 hours after they end. Submit the images again with 'emotag tag DIR --batch "
        "--retry-failed' or label them interactively."
    )


def _error_details(details: Any) -> Iterator[dict[str, Any]]:
    error = details.get("error", details) if isinstance(details, dict) else {}
    for item in error.get("details", []) if isinstance(error, dict) else []:
        if isinstance(item, dict):
            yield item


def retry_delay(details: Any) -> float | None:
    """The `RetryInfo.retryDelay` of an error body ("7s", "0.5s"), in seconds."""
    for item in _error_details(details):
        delay = item.get("retryDelay")
        if isinstance(delay, str) and (match := re.fullmatch(r"\s*([\d.]+)s\s*", delay)):
            return float(match.group(1))
    return None


def _daily_quota(details: Any) -> str | None:
    """The quota id of a QuotaFailure violation that is per day: it will not come back
    for hours, whatever retryDelay says."""
    for item in _error_details(details):
        for violation in item.get("violations", []) or []:
            quota = str(violation.get("quotaId", "")) if isinstance(violation, dict) else ""
            if "PerDay" in quota:
                value = violation.get("quotaValue")
                return f"{quota}, limit {value}" if value else quota
    return None


def estimate_input_tokens(model: str, prompt: str, width: int, height: int) -> int:
    """Billed input tokens for one image plus the prompt, from the documented rules."""
    text_tokens = math.ceil(len(prompt) / 4)
    if model.startswith("gemini-1") or model.startswith("gemini-2"):
        # Gemini 2.x: 258 tokens up to 384 px a side, else per 768x768 tile.
        image = (
            258
            if max(width, height) <= 384
            else 258 * math.ceil(width / 768) * math.ceil(height / 768)
        )
    else:
        # Gemini 3 bills by media_resolution; emotag asks for LOW.
        image = 280
    return image + text_tokens


def _refused_setting(exc: Any, active: set[str]) -> str | None:
    if getattr(exc, "code", None) != 400:
        return None
    return named_setting(str(getattr(exc, "message", "") or ""), active, _SETTING_WORDS)


def _is_key_problem(message: str, details: Any) -> bool:
    text = f"{message} {details}".lower()
    return "api key" in text or "api_key" in text


def _network_reason(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    detail = str(exc) or (str(cause) if cause else "")
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _reached_the_model(exc: BaseException) -> bool:
    """A timeout or an answer cut off mid-body: the server had the request, and may bill
    it, so it costs an attempt, unlike a refused or reset connection."""
    name = type(exc).__name__
    return "Timeout" in name or name == "ClientPayloadError"


def transport_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean no whole HTTP answer came back, for the HTTP stacks the SDK runs
    on: aiohttp for labelling, httpx2 (or httpx) for batch calls. An answer cut off
    mid-body is aiohttp's ClientPayloadError, which is no connection error."""
    found: list[type[BaseException]] = []
    for module, name in (
        ("httpx", "TransportError"),
        ("httpx2", "TransportError"),
        ("aiohttp", "ClientConnectionError"),
        ("aiohttp", "ClientPayloadError"),
    ):
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


@dataclass
class GeminiBatches:
    """The Files and Batch API calls batch mode needs, with errors in emotag's terms."""

    client: genai.Client
    model: str
    endpoint: str = ENDPOINT
    provider: GeminiProvider | None = None  # builds the lines; not needed to follow jobs
    max_requests: int = 1_000_000
    max_bytes: int = MAX_JOB_BYTES

    def line(self, key: str, image: Prepared) -> dict[str, Any]:
        assert self.provider is not None, "lines are built from a run's provider"
        return {"key": key, "request": self.provider.request_json(image)}

    def upload(self, path: str, display_name: str) -> str:
        from google.genai import types

        with self._errors("file", path):
            uploaded = self.client.files.upload(
                file=path,
                config=types.UploadFileConfig(display_name=display_name, mime_type="jsonl"),
            )
        return uploaded.name or ""

    def create(self, file: str, display_name: str) -> tuple[str, JobStatus]:
        from google.genai import types

        with self._errors("model", self.model):
            created = self.client.batches.create(
                model=self.model,
                src=file,
                config=types.CreateBatchJobConfig(display_name=display_name),
            )
        return created.name or "", _status(created)

    def status(self, name: str) -> JobStatus:
        with self._errors("job", name):
            return _status(self.client.batches.get(name=name))

    def find(self) -> dict[str, tuple[str, JobStatus]]:
        with self._errors("job", "list"):
            return {
                job.display_name or "": (job.name or "", _status(job))
                for job in self.client.batches.list()
                if job.name
            }

    def cancel(self, name: str) -> None:
        with self._errors("job", name):
            self.client.batches.cancel(name=name)

    def results(self, name: str) -> dict[str, Answer | str]:
        with self._errors("job", name):
            job = self.client.batches.get(name=name)
        file = job.dest.file_name if job.dest else None
        if not file:
            return {}
        with self._errors("file", file):
            data = self.client.files.download(file=file)
        answers: dict[str, Answer | str] = {}
        for line in data.decode("utf-8").splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key = str(item.get("key", ""))
            if "error" in item:
                error = item["error"] or {}
                answers[key] = (
                    f"batch request failed: {error.get('code', '')} "
                    f"{error.get('message', '')}".strip()
                )
                continue
            try:
                answers[key] = read_reply(item.get("response") or {}, 1)[0]
            except AnswerError as exc:
                answers[key] = str(exc)
        return answers

    def close(self) -> None:
        self.client.close()

    @contextmanager
    def _errors(self, subject: Subject, name: str) -> Iterator[None]:
        from google.genai import errors

        try:
            yield
        except errors.APIError as exc:
            mapped = map_api_error(exc, subject, name)
            if isinstance(mapped, AnswerError | TransientAPIError):
                # Outside a labelling run nothing retries: say it plainly and stop.
                raise FatalAPIError(f"The API refused the batch call ({mapped}).") from None
            raise mapped from None
        except transport_errors() as exc:
            raise FatalAPIError(
                f"Cannot reach the Gemini API at {self.endpoint} ({_network_reason(exc)}); "
                "nothing is lost, run the same command again."
            ) from None


def _status(job: types.BatchJob) -> JobStatus:
    wire = str(getattr(job.state, "value", job.state) or "JOB_STATE_UNSPECIFIED")
    detail = (job.error.message or "") if job.error else ""
    return JobStatus(JOB_STATES.get(wire, "pending"), detail)


def _build(setup: Setup) -> GeminiProvider:
    from emotag.providers.gemini_sessions import own_session

    session = own_session()
    client = make_client(setup.key, base_url=setup.base_url, timeout=setup.timeout, session=session)
    return GeminiProvider(
        client, session=session, **setup.provider_fields(OPTIONAL_SETTINGS, CANDIDATES)
    )


def _batches(setup: Setup, provider: Provider | None) -> GeminiBatches:
    if isinstance(provider, GeminiProvider):
        return GeminiBatches(provider.client, setup.model, setup.endpoint, provider)
    client = make_client(setup.key, base_url=setup.base_url, timeout=setup.timeout)
    return GeminiBatches(client, setup.model, setup.endpoint)


def _price(model: str, inp: float, out: float, until: str = "") -> Price:
    # Read from Google's page through a transcription of it made that day.
    return Price(model, inp, out, 0.5, "2026-10-07", PRICING, until)


SPEC: Final = ProviderSpec(
    name="gemini",
    about="Google's Gemini API",
    key_var=KEY_VAR,
    base_url_var="GOOGLE_GEMINI_BASE_URL",
    default_endpoint=ENDPOINT,
    default_model=DEFAULT_MODEL,
    build=_build,
    input_tokens=estimate_input_tokens,
    prices=(
        _price("gemini-3.8-flash", 0.75, 3.75, until="2026-12-31"),
        _price("gemini-3.8-flash", 1.50, 7.50),
        _price("gemini-3.5-flash", 1.50, 9.00),
        _price("gemini-3.5-flash-lite", 0.30, 2.50),
        _price("gemini-3.1-pro-preview", 2.00, 12.00),  # prompts up to 200k tokens
    ),
    features=frozenset({"logprobs", "several_answers"}),
    batches=_batches,
)
