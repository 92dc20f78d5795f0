"""emotag's own aiohttp session for an SDK's requests: it reads the environment once.

google-genai builds its aiohttp session with `trust_env=True`, so aiohttp looks up the
proxy and ~/.netrc in a worker thread on every request, a large share of a request's
CPU at high concurrency (docs/performance.md has the figures). This session does not trust
the environment; the proxy the environment names for the API is read once per client
and sent with each request, so HTTPS_PROXY and NO_PROXY work as before. ~/.netrc is
not read: the API key authenticates.
"""

from __future__ import annotations

import asyncio
import urllib.request
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import aiohttp


def environment_proxy(url: str) -> str | None:
    """The proxy the environment (HTTPS_PROXY, HTTP_PROXY, or the system's settings)
    names for `url`'s scheme, unless NO_PROXY exempts its host: what aiohttp's
    `trust_env` finds for it."""
    parts = urlsplit(url)
    if not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def own_session() -> aiohttp.ClientSession | None:
    """A session owned by the running event loop, with no cap on connections (the run's
    --concurrency is the cap), or None outside a loop: a session belongs to one loop, so
    a client built outside one (a batch command's probe) leaves it to the SDK."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return None
    import aiohttp

    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), trust_env=False)
