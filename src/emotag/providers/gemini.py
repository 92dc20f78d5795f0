"""One labelling request to Gemini: build it, send it, read the answer and the errors.

The only module that imports google-genai, lazily, so `emotag --help` stays fast.
"""

from __future__ import annotations

import base64
import importlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from emotag.emotions import EMOTIONS, FACE_COUNTS, parse_answer
from emotag.errors import AnswerError, EmotagError, FatalAPIError

if TYPE_CHECKING:
    from google import genai
    from google.genai import types

    from emotag.images import Prepared

DEFAULT_PROMPT: Final = (
    "You are an expert annotator of facial expressions. Count the human faces in the image: "
    "none, one or several (with none, the emotion is ignored). Classify the expression of "
    "the face, or of the most prominent face if there are several, as exactly one of: "
    + ", ".join(EMOTIONS)
    + "."
)

# Faces come first so the model commits to "is there a face" before picking an emotion.
RESPONSE_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "faces": {"type": "string", "enum": list(FACE_COUNTS)},
        "emotion": {"type": "string", "enum": list(EMOTIONS)},
    },
    "required": ["faces", "emotion"],
    "propertyOrdering": ["faces", "emotion"],
}

BLOCKING_FINISH_REASONS: Final = frozenset(
    {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "IMAGE_SAFETY", "RECITATION"}
)
RETRYABLE_CODES: Final = frozenset({408, 429, 500, 502, 503, 504})

# Optional request settings a model may reject; each is dropped once, for the whole run.
OPTIONAL_SETTINGS: Final = ("logprobs", "thinking", "media_resolution")
_SETTING_WORDS: Final = {
    "logprobs": ("logprob",),
    "thinking": ("thinking",),
    "media_resolution": ("media_resolution", "mediaresolution", "media resolution"),
}


class TransientAPIError(EmotagError):
    """A failure worth retrying; `retry_after` is the server's own RetryInfo delay."""

    def __init__(self, message: str, retry_after: float | None = None, code: int = 0) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.code = code


@dataclass(frozen=True, slots=True)
class Answer:
    emotion: str
    confidence: float | None
    confidence_source: str
    input_tokens: int
    output_tokens: int
    faces: str = ""  # "0", "1", "2+", or "" when the answer did not say


@dataclass
class Labeller:
    """Sends one image per call; remembers for the run which optional settings work."""

    client: genai.Client
    model: str
    prompt: str = DEFAULT_PROMPT
    settings: set[str] = field(default_factory=lambda: set(OPTIONAL_SETTINGS))
    on_warning: Callable[[str], None] = lambda message: None
    _configs: dict[frozenset[str], types.GenerateContentConfig] = field(default_factory=dict)

    async def label(self, image: Prepared) -> Answer:
        from google.genai import errors, types

        contents = types.Content(
            role="user",
            parts=[
                types.Part.from_bytes(data=image.data, mime_type=image.mime_type),
                types.Part.from_text(text=self.prompt),
            ],
        )
        while True:
            try:
                response = await self.client.aio.models.generate_content(
                    model=self.model, contents=contents, config=self._config()
                )
            except errors.APIError as exc:
                rejected = _rejected_setting(exc, self.settings)
                if rejected is None:
                    raise map_api_error(exc, self.model) from None
                self.settings.discard(rejected)
                self.on_warning(
                    f"model {self.model} does not accept the {rejected} setting; "
                    "continuing without it"
                )
                continue
            return read_response(response)

    def request_json(self, image: Prepared) -> dict[str, Any]:
        """The REST body of the same request, for a Batch API input file (no logprobs:
        batch answers are not worth a per-line refusal on keys that cannot have them)."""
        generation = self._config().model_dump(mode="json", by_alias=True, exclude_none=True)
        generation.pop("responseLogprobs", None)
        data = base64.b64encode(image.data).decode()
        parts = [{"inlineData": {"mimeType": image.mime_type, "data": data}}, {"text": self.prompt}]
        return {"contents": [{"role": "user", "parts": parts}], "generationConfig": generation}

    def _config(self) -> types.GenerateContentConfig:
        """The request config for the settings still in use; built once per combination."""
        key = frozenset(self.settings)
        if key not in self._configs:
            self._configs[key] = self._build_config()
        return self._configs[key]

    def _build_config(self) -> types.GenerateContentConfig:
        from google.genai import types

        config = types.GenerateContentConfig(
            temperature=0.0,
            response_mime_type="application/json",
            response_json_schema=RESPONSE_SCHEMA,
            max_output_tokens=64,
        )
        if "logprobs" in self.settings:
            config.response_logprobs = True
        if "media_resolution" in self.settings:
            config.media_resolution = types.MediaResolution.MEDIA_RESOLUTION_LOW
        if "thinking" in self.settings:
            config.thinking_config = _thinking_config(self.model)
        return config


def make_client(
    api_key: str, *, base_url: str | None = None, timeout: float = 60.0
) -> genai.Client:
    """The SDK client; its own retries stay off because emotag's tagger owns retrying."""
    from google import genai
    from google.genai import types

    options = types.HttpOptions(timeout=int(timeout * 1000))
    if base_url:
        options.base_url = base_url
    return genai.Client(api_key=api_key, http_options=options)


def read_response(response: types.GenerateContentResponse) -> Answer:
    """Turn a reply into an Answer, or raise AnswerError for blocked or off-list replies."""
    usage = response.usage_metadata
    tokens_in = (usage.prompt_token_count or 0) if usage else 0
    tokens_out = (
        ((usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)) if usage else 0
    )
    if not response.candidates:
        feedback = response.prompt_feedback
        reason = feedback.block_reason if feedback and feedback.block_reason else None
        raise AnswerError(f"blocked by the API: {_enum_name(reason) if reason else 'no answer'}")
    candidate = response.candidates[0]
    finish = _enum_name(candidate.finish_reason) if candidate.finish_reason else ""
    if finish in BLOCKING_FINISH_REASONS:
        raise AnswerError(f"answer blocked by the API: {finish}")
    parts = candidate.content.parts if candidate.content and candidate.content.parts else []
    text = "".join(p.text for p in parts if p.text and not p.thought)
    emotion, faces = parse_answer(text)
    confidence = _label_probability(candidate, text, emotion)
    return Answer(
        emotion=emotion,
        confidence=confidence,
        confidence_source="logprobs" if confidence is not None else "",
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        faces=faces,
    )


def map_api_error(exc: Any, model: str) -> EmotagError:
    """Sort an SDK APIError into fatal (stop the run), transient (retry) or per-image."""
    code = int(getattr(exc, "code", 0) or 0)
    status = str(getattr(exc, "status", "") or "")
    message = str(getattr(exc, "message", "") or "")
    if code in RETRYABLE_CODES:
        return TransientAPIError(
            f"{code} {status}".strip(), retry_after=retry_delay(exc.details), code=code
        )
    if code == 404:
        return FatalAPIError(
            f"Model '{model}' was not found (404): it may be retired or misspelt. "
            "Choose another with --model or EMOTAG_MODEL, e.g. gemini-3.5-flash-lite."
        )
    if code in (401, 403) or (code == 400 and _is_key_problem(message, exc.details)):
        return FatalAPIError(
            f"The API rejected the key ({code} {status}). Check AI_STUDIO_API_KEY, "
            "or run 'emotag key status' to see which key is used."
        )
    return AnswerError(f"request rejected: {code} {status} {message}".strip())


def retry_delay(details: Any) -> float | None:
    """The `RetryInfo.retryDelay` of an error body ("7s", "0.5s"), in seconds."""
    error = details.get("error", details) if isinstance(details, dict) else {}
    for item in error.get("details", []) if isinstance(error, dict) else []:
        delay = item.get("retryDelay") if isinstance(item, dict) else None
        if isinstance(delay, str) and (match := re.fullmatch(r"\s*([\d.]+)s\s*", delay)):
            return float(match.group(1))
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


def _thinking_config(model: str) -> types.ThinkingConfig:
    from google.genai import types

    if model.startswith("gemini-2"):
        return types.ThinkingConfig(thinking_budget=0)
    return types.ThinkingConfig(thinking_level=types.ThinkingLevel.MINIMAL)


def _rejected_setting(exc: Any, active: set[str]) -> str | None:
    if getattr(exc, "code", None) != 400:
        return None
    message = str(getattr(exc, "message", "") or "").lower()
    for name in OPTIONAL_SETTINGS:
        if name in active and any(word in message for word in _SETTING_WORDS[name]):
            return name
    return None


def _is_key_problem(message: str, details: Any) -> bool:
    return "api key" in message.lower() or "API_KEY_INVALID" in str(details)


def _label_probability(candidate: types.Candidate, text: str, emotion: str) -> float | None:
    """exp(sum of the log probabilities of the tokens that spell the label), or None."""
    result = candidate.logprobs_result
    if not result or not result.chosen_candidates:
        return None
    start = text.rfind(emotion)  # the label is the answer's last field
    if start < 0:
        return None
    end = start + len(emotion)
    total, offset, covered = 0.0, 0, False
    for token in result.chosen_candidates:
        piece = token.token or ""
        if offset < end and offset + len(piece) > start and token.log_probability is not None:
            total += token.log_probability
            covered = True
        offset += len(piece)
    return min(1.0, math.exp(total)) if covered else None


def _enum_name(value: Any) -> str:
    return str(getattr(value, "value", value))


def transport_errors() -> tuple[type[BaseException], ...]:
    """httpx's connection/timeout errors, for whichever httpx the SDK runs on."""
    found: list[type[BaseException]] = []
    for name in ("httpx", "httpx2"):
        try:
            found.append(importlib.import_module(name).TransportError)
        except ImportError:
            continue
    return tuple(found)
