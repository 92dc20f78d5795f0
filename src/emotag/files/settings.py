"""Configuration and the API key: environment, then `.env`, then the system keyring."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from emotag.errors import ConfigError

if TYPE_CHECKING:
    from emotag.providers import ProviderSpec

KEYRING_SERVICE: Final = "emotag"
ENVIRONMENT, DOTENV = "environment", ".env file"  # where a key or a base URL was found
ALLOW_HTTP: Final = "EMOTAG_ALLOW_HTTP"  # =1: a key may go over plain http to another host
DEFAULT_OUTPUT: Final = Path("dataset/llm_labels.csv")

# Run defaults, here so the CLI's help can show them without importing the engine.
DEFAULT_CONCURRENCY: Final = 16
# Requests in flight per worker process; up to it one process keeps up (docs/performance.md).
IN_FLIGHT_PER_WORKER: Final = 128
DEFAULT_TIMEOUT: Final = 60.0
DEFAULT_ATTEMPTS: Final = 6
DEFAULT_MAX_WAIT: Final = 600.0  # seconds of nothing but 429s before a run stops
DEFAULT_BATCH_SIZE: Final = 10_000
DEFAULT_MAX_SIDE: Final = 384  # Gemini 2.x's flat 258-token tier; a face is clear at this size


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key and where it came from; its repr never shows the secret."""

    value: str
    source: str

    def __repr__(self) -> str:
        return f"ApiKey(source={self.source!r}, value={mask(self.value)!r})"

    __str__ = __repr__


def mask(secret: str) -> str:
    """Enough to tell two keys apart, never enough to use one."""
    if len(secret) <= 8:
        return "****"
    return f"****{secret[-4:]} ({len(secret)} chars)"


def setting(name: str, env_file: Path | None = None) -> str | None:
    """A setting from the environment, else from the `.env` file (without touching os.environ)."""
    return os.environ.get(name) or _dotenv(name, env_file)


def _dotenv(name: str, env_file: Path | None = None) -> str | None:
    from dotenv import dotenv_values

    path = env_file or Path.cwd() / ".env"
    if path.is_file():
        return dotenv_values(path).get(name) or None
    return None


def find_key(var: str, env_file: Path | None = None) -> ApiKey | None:
    """The first non-blank key found: environment, `.env`, keyring; None if there is none."""
    return _variable_key(var, env_file) or _stored_key(var)


def key_for(provider: ProviderSpec, endpoint: str, env_file: Path | None = None) -> ApiKey | None:
    """The key that may be sent to `endpoint`, so a key never reaches a host it is not for.

    The provider's variable (OPENAI_API_KEY) goes to its own host and to the endpoint its
    base-URL variable names in the same place (the environment, or the .env file), as the
    SDKs pair the two: a .env in the working folder cannot send the environment's key
    elsewhere. The keyring's plain entry is the provider's own. Any other endpoint
    (`--base-url`) gets only a key stored for it.
    """
    if endpoint == provider.default_endpoint:
        return find_key(provider.key_var, env_file)
    found = _variable_key(provider.key_var, env_file)
    if found is not None and endpoint == _paired_endpoint(provider, found.source, env_file):
        return found
    return _stored_key(provider.key_var, endpoint)


def _paired_endpoint(provider: ProviderSpec, source: str, env_file: Path | None) -> str:
    """Where the provider's base-URL variable points in the key's own source (its own host
    when unset there)."""
    if source == ENVIRONMENT:
        return provider.endpoint(os.environ.get(provider.base_url_var) or None)
    return provider.endpoint(_dotenv(provider.base_url_var, env_file))


def _named_endpoint(provider: ProviderSpec) -> str:
    """Where the provider's base-URL variable points, from wherever it is set."""
    return provider.endpoint(setting(provider.base_url_var))


def cleartext_refusal(base_url: str | None, key: ApiKey) -> str | None:
    """Why the key may not go to `base_url`: over plain http to another machine, where
    anyone on the way can read it, unless the user opted in (EMOTAG_ALLOW_HTTP=1)."""
    from urllib.parse import urlparse

    from emotag.providers import is_loopback

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
    elsewhere = _variable_key(var, None)
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


def store_key(value: str, var: str, endpoint: str | None = None) -> None:
    value = value.strip()
    if not value:
        raise ConfigError("Refusing to store an empty key.")
    _keyring_call("set_password", KEYRING_SERVICE, _entry(var, endpoint), value)


def delete_key(var: str, endpoint: str | None = None) -> bool:
    """Remove the key from the keyring; False when there was none."""
    import keyring.errors

    try:
        _keyring_call("delete_password", KEYRING_SERVICE, _entry(var, endpoint))
    except keyring.errors.PasswordDeleteError:
        return False
    return True


def _entry(var: str, endpoint: str | None) -> str:
    """The keyring entry: `OPENAI_API_KEY`, or `OPENAI_API_KEY@host:port` for one endpoint."""
    return var if endpoint is None else f"{var}@{endpoint}"


def _variable_key(var: str, env_file: Path | None) -> ApiKey | None:
    if value := os.environ.get(var, "").strip():
        return ApiKey(value, ENVIRONMENT)
    if value := (_dotenv(var, env_file) or "").strip():
        return ApiKey(value, DOTENV)
    return None


def _stored_key(var: str, endpoint: str | None = None) -> ApiKey | None:
    value = (_keyring_get(_entry(var, endpoint)) or "").strip()
    if not value:
        return None
    return ApiKey(value, "system keyring" + (f", for {endpoint}" if endpoint else ""))


def _keyring_get(entry: str) -> str | None:
    import keyring.errors

    try:
        value = _keyring_call("get_password", KEYRING_SERVICE, entry)
    except ConfigError:
        # No usable keyring is the same as no key there: the other sources still count.
        return None
    except keyring.errors.KeyringError:
        return None
    return value if isinstance(value, str) else None


def _keyring_call(name: str, *args: str) -> object:
    import keyring
    import keyring.errors

    try:
        return getattr(keyring, name)(*args)
    except keyring.errors.NoKeyringError as exc:
        raise ConfigError(
            "No system keyring is available on this machine; set the key's variable in the "
            "environment or in a .env file instead."
        ) from exc
