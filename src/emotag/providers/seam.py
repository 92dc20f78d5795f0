"""What a provider plugin implements and declares: the `Provider` and `Batches`
protocols, the `Setup` it is built from, and the `ProviderSpec` (with its `Price` rows)
that tells the rest of emotag what it can do. Nothing here imports an SDK."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol
from urllib.parse import urlparse

from emotag.errors import FatalAPIError
from emotag.providers.question import DEFAULT_PROMPT

if TYPE_CHECKING:
    from emotag.files.images import Prepared
    from emotag.providers.answers import Answer
    from emotag.providers.negotiation import Negotiator

# What a provider can do beyond one answer per request.
Capability = Literal["logprobs", "several_answers", "batch"]
# A batch job's state in emotag's words; each provider maps its wire states onto these.
JobState = Literal["pending", "running", "succeeded", "failed", "cancelled", "expired"]
ENDED: Final[frozenset[str]] = frozenset({"succeeded", "failed", "cancelled", "expired"})


class Provider(Protocol):
    """What the engine needs from a labelling service."""

    service: str  # the API's name in messages, e.g. "Gemini"
    reports_model: bool  # the `model` column takes the model name the server reports
    model: str
    endpoint: str  # host (or base URL) shown in messages and keyed in the settings memory
    settings: Negotiator

    async def label(self, image: Prepared, n: int = 1) -> list[Answer]:
        """Between 1 and `n` independent answers (n > 1 only with --votes)."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class JobStatus:
    state: JobState
    detail: str = ""  # why a job failed, in the service's words


class Batches(Protocol):
    """A provider's batch API, with errors in emotag's terms (`batch.py` drives it)."""

    max_requests: int  # per input file
    max_bytes: int

    def line(self, key: str, image: Prepared) -> dict[str, Any]:
        """One input-file line: the same request a live run sends, under `key`."""
        ...

    def upload(self, path: str, display_name: str) -> str: ...
    def create(self, file: str, display_name: str) -> tuple[str, JobStatus]: ...
    def status(self, name: str) -> JobStatus: ...
    def find(self) -> dict[str, tuple[str, JobStatus]]:
        """Jobs by display name: finds one created just before a crash."""
        ...

    def cancel(self, name: str) -> None: ...
    def results(self, name: str) -> dict[str, Answer | str]:
        """Each request key's answer, or the reason it has none."""
        ...

    def close(self) -> None: ...


def ignore_warning(message: str) -> None:
    """A `Setup.on_warning` that drops the message (and, unlike a lambda, pickles)."""
    return None


@dataclass(frozen=True, slots=True)
class Setup:
    """Everything a provider needs to build its client for one run or batch command."""

    model: str
    key: str
    base_url: str | None
    endpoint: str
    timeout: float = 65.0
    prompt: str = DEFAULT_PROMPT
    votes: int = 1
    logprobs: bool | None = None  # None: ask where the model gives them, silently
    on_warning: Callable[[str], None] = ignore_warning

    def negotiator(self, optional: Iterable[str], several: str | None = None) -> Negotiator:
        """The provider's optional settings, less "logprobs" with --no-logprobs; the
        setting for several answers in one request (if it has one) only with --votes."""
        from emotag.providers.negotiation import Negotiator

        wanted = set(optional) | ({several} if several and self.votes > 1 else set())
        if self.logprobs is False:
            wanted.discard("logprobs")
        explicit = {"logprobs"} if self.logprobs else set()
        return Negotiator(
            self.endpoint, self.model, wanted, explicit=explicit, on_warning=self.on_warning
        )

    def provider_fields(self, optional: Iterable[str], several: str | None) -> dict[str, Any]:
        """The fields every built-in provider class takes from a setup, beside its client."""
        return {
            "model": self.model,
            "settings": self.negotiator(optional, several),
            "endpoint": self.endpoint,
            "prompt": self.prompt,
            "votes": self.votes,
        }


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per million tokens for one model, and where that figure comes from."""

    model: str
    input_per_million: float
    output_per_million: float
    batch_discount: float  # the share batch mode takes off: 0.5 is half price
    checked: str  # the day the source was read
    source: str
    until: str = ""  # the last day this price holds (a later row takes over)

    def cost(self, input_tokens: int, output_tokens: int, *, batch: bool = False) -> float:
        dollars = (
            input_tokens * self.input_per_million + output_tokens * self.output_per_million
        ) / 1_000_000
        return dollars * (1 - self.batch_discount) if batch else dollars

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _always(base_url: str | None) -> bool:
    return True


def _any(model: str, base_url: str | None) -> None:
    return None


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """A provider as the rest of emotag sees it, importable without its SDK."""

    name: str
    about: str  # in `--provider` help: "any OpenAI-compatible server"
    key_var: str
    base_url_var: str
    default_endpoint: str
    default_model: str
    build: Callable[[Setup], Provider]
    # Billed input tokens for one image of (width, height) and the prompt: the dry run.
    input_tokens: Callable[[str, str, int, int], int]
    prices: tuple[Price, ...] = ()
    # Beyond one answer per request; "batch" is having `batches`.
    features: frozenset[Capability] = frozenset()
    batches: Callable[[Setup, Provider | None], Batches] | None = None
    needs_key: Callable[[str | None], bool] = _always  # False: this base URL takes any key
    # The same image always gets the same answer, so --votes K would only repeat it.
    deterministic: bool = False
    # Raises ConfigError for a model or base URL it cannot use, before any work is done.
    check: Callable[[str, str | None], None] = _any

    @property
    def keyed(self) -> bool:
        """It sends to a service that takes a key (the offline model does not)."""
        return bool(self.key_var)

    def can(self, capability: Capability) -> bool:
        return self.batches is not None if capability == "batch" else capability in self.features

    def endpoint(self, base_url: str | None) -> str:
        """The host (and port) requests go to: messages, settings memory, key scope."""
        return endpoint_name(base_url, self.default_endpoint)


def redirected(code: int, where: str) -> FatalAPIError:
    """No API request follows a redirect (a 3xx would re-send the key and the image to
    wherever it points): the run stops, and no image is blamed."""
    return FatalAPIError(
        f"{where} answered with a redirect ({code}); emotag follows none, so nothing was "
        "sent on to where it points",
        then="Check the base URL; if the API has moved, give its new address",
    )


def endpoint_name(base_url: str | None, default: str) -> str:
    if not base_url:
        return default
    return urlparse(base_url).netloc or base_url


def is_loopback(base_url: str | None) -> bool:
    """A server on this machine (Ollama, vLLM, LM Studio)."""
    host = urlparse(base_url or "").hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")
