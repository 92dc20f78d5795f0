"""Settings and keys where the user keeps them: the environment, then `.env`, then the
system keyring; and the run defaults the CLI's help shows. Which key may go to which
endpoint is `providers.keys`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from emotag.errors import ConfigError

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


def setting(name: str) -> str | None:
    """A setting from the environment, else from the `.env` file (without touching os.environ)."""
    return os.environ.get(name) or dotenv_setting(name)


def dotenv_setting(name: str) -> str | None:
    """A setting from the `.env` file in the working folder, where the user runs emotag."""
    from dotenv import dotenv_values

    path = Path.cwd() / ".env"
    if path.is_file():
        return dotenv_values(path).get(name) or None
    return None


def find_key(var: str) -> ApiKey | None:
    """The first non-blank key found: environment, `.env`, keyring; None if there is none."""
    return variable_key(var) or stored_key(var)


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


def variable_key(var: str) -> ApiKey | None:
    if value := os.environ.get(var, "").strip():
        return ApiKey(value, ENVIRONMENT)
    if value := (dotenv_setting(var) or "").strip():
        return ApiKey(value, DOTENV)
    return None


def stored_key(var: str, endpoint: str | None = None) -> ApiKey | None:
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
