"""A forward HTTP proxy on 127.0.0.1, as HTTP_PROXY names one: it relays each request it
is sent to the absolute URL in its request line and counts them."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from fakes.server import serve

# Per hop, never relayed (RFC 9110 7.6.1); the body is re-sent with its own length.
_HOP: frozenset[str] = frozenset(
    {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer"}
    | {"transfer-encoding", "upgrade", "content-length"}
)


@dataclass
class Proxy:
    url: str = ""
    forwarded: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(state: Proxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the client's pool expects

        def _relay(self) -> None:
            target = urlsplit(self.path)
            if not target.hostname:  # origin-form: a client that did not use us as a proxy
                self.send_error(400, "a proxy takes absolute URLs")
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            upstream = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=60)
            try:
                path = target.path + (f"?{target.query}" if target.query else "")
                upstream.request(self.command, path, body or None, headers)
                answer = upstream.getresponse()
                data = answer.read()
            finally:
                upstream.close()
            with state._lock:
                state.forwarded += 1
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in _HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _relay

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def forward_proxy() -> Iterator[Proxy]:
    """A running proxy for the length of the block."""
    state = Proxy()
    state.url, stop = serve(_handler(state))
    try:
        yield state
    finally:
        stop()
