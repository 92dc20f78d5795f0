"""The registry: the built-in providers and those installed under the entry-point group
`emotag.providers`, each loaded on first use (a plugin scan reads every installed
package, so it runs once a process and only where a command needs the list)."""

from __future__ import annotations

import importlib
from functools import cache
from typing import Final

from emotag.errors import ConfigError
from emotag.providers.seam import ProviderSpec

ENTRY_POINTS: Final = "emotag.providers"
BUILTIN: Final = {
    "gemini": "emotag.providers.gemini:SPEC",
    "openai": "emotag.providers.openai_compat:SPEC",
    "local": "emotag.providers.local_model:SPEC",
}
DEFAULT_PROVIDER: Final = "gemini"


_loaded: dict[str, ProviderSpec] = {}


def spec(name: str) -> ProviderSpec:
    """The provider called `name`: built in, or installed under `emotag.providers`."""
    if name in _loaded:
        return _loaded[name]
    target = BUILTIN.get(name) or _plugins().get(name)
    if target is None:
        raise ConfigError(f"Unknown provider '{name}'; choose one of: {', '.join(names())}.")
    found = _load(name, target)
    _loaded[name] = found
    return found


def names() -> list[str]:
    """Every provider that can be chosen, built-in ones first."""
    return [*BUILTIN, *sorted(set(_plugins()) - set(BUILTIN))]


def loaded() -> list[ProviderSpec]:
    """The built-in providers and any plugin already in use (for the price table)."""
    for name in BUILTIN:
        spec(name)
    return list(_loaded.values())


@cache
def _plugins() -> dict[str, str]:
    """The installed plugins, read once a process (a scan of every installed package)."""
    from importlib.metadata import entry_points

    return {point.name: point.value for point in entry_points(group=ENTRY_POINTS)}


def _load(name: str, target: str) -> ProviderSpec:
    module, _, attribute = target.partition(":")
    try:
        found = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"The provider '{name}' ({target}) cannot be loaded: {exc}") from exc
    if not isinstance(found, ProviderSpec) or found.name != name:
        raise ConfigError(f"The provider '{name}' ({target}) is not a ProviderSpec named '{name}'.")
    return found
