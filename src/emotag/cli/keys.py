"""`emotag key set|status|delete`: the API key in the system keyring."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from emotag.cli.shared import (
    RegistryHelp,
    each_provider,
    err,
    out,
    reports_errors,
)
from emotag.errors import ConfigError
from emotag.providers import DEFAULT_PROVIDER, spec

if TYPE_CHECKING:
    from emotag.providers import ProviderSpec

ProviderOption = Annotated[
    str,
    typer.Option(
        help=RegistryHelp(
            lambda: (
                "Whose key: "
                + each_provider(lambda name: f"{name} ({spec(name).key_var})", keyed=True)
                + "."
            )
        )
    ),
]


KeyBaseUrl = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        help="The key for this endpoint only (a local or hosted server of the provider's "
        "kind); the provider's key variable is never sent there.",
    ),
]


def _keyed(provider: str) -> ProviderSpec:
    chosen = spec(provider)
    if not chosen.keyed:
        raise ConfigError(f"The {chosen.name} provider needs no key.")
    return chosen


@reports_errors
def key_set(provider: ProviderOption = DEFAULT_PROVIDER, base_url: KeyBaseUrl = None) -> None:
    """Store the provider's key in the system keyring (prompted, hidden; or read from stdin)."""
    from emotag.files.settings import store_key

    chosen = _keyed(provider)
    endpoint = chosen.endpoint(base_url) if base_url else None
    interactive = sys.stdin.isatty()
    value = typer.prompt(chosen.key_var, hide_input=True) if interactive else sys.stdin.readline()
    store_key(value, chosen.key_var, endpoint)
    scope = f" for {endpoint} only" if endpoint else ""
    err.print(
        f"{chosen.key_var} stored in the system keyring (service 'emotag'){scope}.", markup=False
    )


@reports_errors
def key_status(provider: ProviderOption = DEFAULT_PROVIDER, base_url: KeyBaseUrl = None) -> None:
    """Show which key goes where: the provider's host, the endpoint its base-URL variable
    names, and --base-url; each key masked, with the source that wins."""
    from emotag.files.settings import mask
    from emotag.providers.keys import key_routes

    chosen = _keyed(provider)
    routes = key_routes(chosen, base_url)
    if all(route.key is None for route in routes):
        raise ConfigError(
            f"No key found. Set {chosen.key_var}, add it to a .env file, or run "
            f"'emotag key set --provider {chosen.name}'."
        )
    for route in routes:
        key = route.key
        sent = f"the key from the {key.source}, {mask(key.value)}" if key else "no key"
        out.print(
            f"{route.endpoint} ({route.why}): {sent}", highlight=False, soft_wrap=True, markup=False
        )


@reports_errors
def key_delete(provider: ProviderOption = DEFAULT_PROVIDER, base_url: KeyBaseUrl = None) -> None:
    """Remove the provider's key (or the one for --base-url) from the system keyring."""
    from emotag.files.settings import delete_key

    chosen = _keyed(provider)
    if delete_key(chosen.key_var, chosen.endpoint(base_url) if base_url else None):
        err.print("Key removed from the system keyring.")
    else:
        err.print("There was no key in the system keyring.")
