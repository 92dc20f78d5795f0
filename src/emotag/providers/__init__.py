"""The labelling service behind one small protocol, found by name.

A provider builds the request, sends it, reads the answer, sorts its errors into the
classes of `emotag.errors`, knows which key it needs, and learns (with `Negotiator`) which
optional settings its model accepts. The engine, the batch planner and the estimate
import nothing from any SDK; docs/architecture.md says how to add a provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlparse

from emotag.errors import ConfigError

if TYPE_CHECKING:
    from emotag.answers import Answer
    from emotag.images import Prepared
    from emotag.providers.negotiation import Negotiator


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
class ProviderSpec:
    """How to find a provider's key and endpoint before anything is imported."""

    name: str
    key_var: str
    base_url_var: str
    default_endpoint: str
    default_model: str

    def endpoint(self, base_url: str | None) -> str:
        """The host (and port) requests go to: messages, settings memory, key scope."""
        return endpoint_name(base_url, self.default_endpoint)


def endpoint_name(base_url: str | None, default: str) -> str:
    if not base_url:
        return default
    return urlparse(base_url).netloc or base_url


GEMINI = ProviderSpec(
    name="gemini",
    key_var="AI_STUDIO_API_KEY",
    base_url_var="GOOGLE_GEMINI_BASE_URL",
    default_endpoint="generativelanguage.googleapis.com",
    default_model="gemini-3.5-flash-lite",
)
OPENAI = ProviderSpec(
    name="openai",
    key_var="OPENAI_API_KEY",
    base_url_var="OPENAI_BASE_URL",
    default_endpoint="api.openai.com",
    default_model="gpt-4.1-mini",
)
SPECS: dict[str, ProviderSpec] = {GEMINI.name: GEMINI, OPENAI.name: OPENAI}


def spec(name: str) -> ProviderSpec:
    try:
        return SPECS[name]
    except KeyError:
        known = ", ".join(sorted(SPECS))
        raise ConfigError(f"Unknown provider '{name}'; choose one of: {known}.") from None
