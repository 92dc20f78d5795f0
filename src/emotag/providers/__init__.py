"""The seam between emotag and a labelling service: one module and one registry entry
per provider.

A provider module declares a `ProviderSpec`: its name and default model, its key, its
token and price estimate, what it can do (log probabilities, several answers in one
request, a batch API), and how to build its client. The run, the dry run, batch mode, the
`key` commands and the CLI's help read all of it from here and name no provider.

Built-in providers are listed in `BUILTIN`; any other registers through the entry-point
group `emotag.providers` (docs/providers.md has a worked example). No SDK is imported
until a client is built, so `emotag --help` stays fast: the names a provider needs only
when it runs (the answer and its reader, the prepared image, the negotiator) are imported
on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from emotag.errors import (
    AnswerError,
    ConfigError,
    FatalAPIError,
    NetworkError,
    QuotaSpent,
    Throttled,
    TransientAPIError,
)
from emotag.providers.question import DEFAULT_PROMPT
from emotag.providers.registry import BUILTIN, DEFAULT_PROVIDER, loaded, names, spec
from emotag.providers.seam import (
    ENDED,
    Batches,
    Capability,
    JobState,
    JobStatus,
    Price,
    Provider,
    ProviderSpec,
    Setup,
    endpoint_name,
    ignore_warning,
    is_loopback,
    redirected,
)

if TYPE_CHECKING:
    from emotag.files.images import Prepared
    from emotag.providers.answers import Answer, Token, read_text
    from emotag.providers.negotiation import Negotiator

_HOMES = {
    "Prepared": "emotag.files.images",
    "Answer": "emotag.providers.answers",
    "Token": "emotag.providers.answers",
    "read_text": "emotag.providers.answers",
    "Negotiator": "emotag.providers.negotiation",
}

# What a provider plugin may import (docs/providers.md): the spec and the protocols, the
# setup, the answer and its reader, the prepared image, the negotiator, and the errors
# that say what a failure costs. Everything else may change between releases.
__all__ = [
    "BUILTIN",
    "DEFAULT_PROMPT",
    "DEFAULT_PROVIDER",
    "ENDED",
    "Answer",
    "AnswerError",
    "Batches",
    "Capability",
    "ConfigError",
    "FatalAPIError",
    "JobState",
    "JobStatus",
    "Negotiator",
    "NetworkError",
    "Prepared",
    "Price",
    "Provider",
    "ProviderSpec",
    "QuotaSpent",
    "Setup",
    "Throttled",
    "Token",
    "TransientAPIError",
    "endpoint_name",
    "ignore_warning",
    "is_loopback",
    "loaded",
    "names",
    "read_text",
    "redirected",
    "spec",
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(name)
