"""Configuration and the API key: environment, then `.env`, then the system keyring."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from emotag.errors import ConfigError

KEY_VAR: Final = "AI_STUDIO_API_KEY"
KEYRING_SERVICE: Final = "emotag"
DEFAULT_OUTPUT: Final = Path("dataset/llm_labels.csv")

# Run defaults, here so the CLI's help can show them without importing the engine.
DEFAULT_CONCURRENCY: Final = 16
DEFAULT_TIMEOUT: Final = 60.0
DEFAULT_ATTEMPTS: Final = 6
DEFAULT_MAX_WAIT: Final = 600.0  # seconds of nothing but 429s before a run stops
DEFAULT_BATCH_SIZE: Final = 10_000
DEFAULT_MAX_SIDE: Final = 384  # Gemini 2.x's flat 258-token tier; a face is clear at this size


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
    value = os.environ.get(name)
    if value:
        return value
    from dotenv import dotenv_values

    path = env_file or Path.cwd() / ".env"
    if path.is_file():
        found = dotenv_values(path).get(name)
        if found:
            return found
    return None


def find_key(env_file: Path | None = None, var: str = KEY_VAR) -> ApiKey | None:
    """The first non-blank key found: environment, `.env`, keyring; None if there is none."""
    if value := os.environ.get(var, "").strip():
        return ApiKey(value, "environment")
    if value := (setting(var, env_file) or "").strip():
        return ApiKey(value, ".env file")
    value = (_keyring_get(var) or "").strip()
    return ApiKey(value, "system keyring") if value else None


def require_key(env_file: Path | None = None, var: str = KEY_VAR) -> ApiKey:
    key = find_key(env_file, var)
    if key is None:
        raise ConfigError(no_key_message(var))
    return key


def no_key_message(var: str) -> str:
    return (
        f"No API key found. Set {var} in the environment, put {var}=... in a .env "
        "file in this folder, or store it with 'emotag key set'."
    )


def store_key(value: str, var: str = KEY_VAR) -> None:
    value = value.strip()
    if not value:
        raise ConfigError("Refusing to store an empty key.")
    _keyring_call("set_password", KEYRING_SERVICE, var, value)


def delete_key(var: str = KEY_VAR) -> bool:
    """Remove the key from the keyring; False when there was none."""
    import keyring.errors

    try:
        _keyring_call("delete_password", KEYRING_SERVICE, var)
    except keyring.errors.PasswordDeleteError:
        return False
    return True


def _keyring_get(var: str = KEY_VAR) -> str | None:
    import keyring.errors

    try:
        value = _keyring_call("get_password", KEYRING_SERVICE, var)
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
            f"No system keyring is available on this machine; set {KEY_VAR} in the "
            "environment or in a .env file instead."
        ) from exc
