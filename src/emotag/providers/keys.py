"""Which key may go to which endpoint, so a key never reaches a host it is not for: the
provider's own variable to its own host and to the endpoint its base-URL variable names
beside it; any other endpoint only a key stored for it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlparse

from emotag.errors import ConfigError
from emotag.files.settings import (
    ALLOW_HTTP,
    ENVIRONMENT,
    ApiKey,
    dotenv_setting,
    find_key,
    setting,
    stored_key,
    variable_key,
)
from emotag.providers.seam import ProviderSpec, is_loopback


def key_for(provider: ProviderSpec, endpoint: str) -> ApiKey | None:
    """The key that may be sent to `endpoint`, so a key never reaches a host it is not for.

    The provider's variable (OPENAI_API_KEY) goes to its own host and to the endpoint its
    base-URL variable names in the same place (the environment, or the .env file), as the
    SDKs pair the two: a .env in the working folder cannot send the environment's key
    elsewhere. The keyring's plain entry is the provider's own. Any other endpoint
    (`--base-url`) gets only a key stored for it.
    """
    if endpoint == provider.default_endpoint:
        return find_key(provider.key_var)
    found = variable_key(provider.key_var)
    if found is not None and endpoint == _paired_endpoint(provider, found.source):
        return found
    return stored_key(provider.key_var, endpoint)


def _paired_endpoint(provider: ProviderSpec, source: str) -> str:
    """Where the provider's base-URL variable points in the key's own source (its own host
    when unset there)."""
    if source == ENVIRONMENT:
        return provider.endpoint(os.environ.get(provider.base_url_var) or None)
    return provider.endpoint(dotenv_setting(provider.base_url_var))


def _named_endpoint(provider: ProviderSpec) -> str:
    """Where the provider's base-URL variable points, from wherever it is set."""
    return provider.endpoint(setting(provider.base_url_var))


def cleartext_refusal(base_url: str | None, key: ApiKey) -> str | None:
    """Why the key may not go to `base_url`: over plain http to another machine, where
    anyone on the way can read it, unless the user opted in (EMOTAG_ALLOW_HTTP=1)."""
    if not base_url or urlparse(base_url).scheme != "http" or is_loopback(base_url):
        return None
    if setting(ALLOW_HTTP) == "1":
        return None
    return (
        f"Refusing to send the key from the {key.source} in cleartext to {base_url}: use "
        f"https, or set {ALLOW_HTTP}=1 if the network between here and there is yours."
    )


@dataclass(frozen=True, slots=True)
class KeyRoute:
    """Which key goes to one endpoint, and why emotag would send there."""

    endpoint: str
    why: str
    key: ApiKey | None


def key_routes(provider: ProviderSpec, base_url: str | None = None) -> list[KeyRoute]:
    """`emotag key status`: the provider's own host, the endpoint its base-URL variable
    names, and `base_url` if given, each with the key `key_for` would send there."""
    wanted = [(provider.default_endpoint, f"{provider.name}'s own host")]
    if paired := setting(provider.base_url_var):
        wanted.append((provider.endpoint(paired), f"{provider.base_url_var}={paired}"))
    if base_url:
        wanted.append((provider.endpoint(base_url), f"--base-url {base_url}"))
    routes: list[KeyRoute] = []
    for endpoint, why in wanted:
        if endpoint not in {route.endpoint for route in routes}:
            routes.append(KeyRoute(endpoint, why, key_for(provider, endpoint)))
    return routes


def require_key(provider: ProviderSpec, endpoint: str) -> ApiKey:
    key = key_for(provider, endpoint)
    if key is None:
        raise ConfigError(no_key_message(provider, endpoint))
    return key


def no_key_message(provider: ProviderSpec, endpoint: str) -> str:
    var = provider.key_var
    flag = f" --provider {provider.name}"
    elsewhere = variable_key(var)
    if endpoint not in (provider.default_endpoint, _named_endpoint(provider)) or elsewhere:
        return (
            f"No key for {endpoint}: {var} is sent only to {provider.default_endpoint} and to "
            f"the endpoint {provider.base_url_var} names beside it (both in the environment, "
            "or both in the .env file). Store a key for this endpoint with "
            f"'emotag key set{flag} --base-url URL'."
        )
    return (
        f"No API key found. Set {var} in the environment, put {var}=... in a .env "
        f"file in this folder, or store it with 'emotag key set{flag}'."
    )


def sendable_key(chosen: ProviderSpec, base_url: str | None) -> str:
    """The key that may go where this run sends (`key_for`); a base URL the
    provider says needs none (a server on this machine) gets a placeholder."""
    if not chosen.keyed:
        return ""
    endpoint = chosen.endpoint(base_url)
    if not chosen.needs_key(base_url):
        found = key_for(chosen, endpoint)
    else:
        found = require_key(chosen, endpoint)
    if found is None:
        return "not-needed"
    if refusal := cleartext_refusal(base_url, found):
        raise ConfigError(refusal)
    return found.value
