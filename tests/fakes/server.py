"""What every fake shares: a threaded HTTP server that takes a whole run's connections at
once, a handler that answers JSON or bytes (whole, cut off half-way, or not at all), and
the one way a test scripts a reply: a `Reply` per image colour, or a list of them taken in
turn (`scripted`), which each fake's `Reply` extends with its own answer's fields."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar


@dataclass(frozen=True)
class Reply:
    """What a fake answers to one request, on the wire."""

    status: int = 200
    body: dict[str, Any] | None = None  # None: the answer the fake would give anyway
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0  # seconds before answering (past the client's timeout: a hang)
    drop: bool = False  # close the connection without an answer (a network blip)
    cut: bool = False  # the headers and half the body, then the connection resets


R = TypeVar("R", bound=Reply)


def scripted(by_colour: dict[str, R | list[R]], colour: str | None) -> R | None:
    """The reply a test scripted for an image's colour: the same one every time, or the
    next of a list (then the fake's own answer once the list is used up)."""
    found = by_colour.get(colour or "")
    if isinstance(found, list):
        return found.pop(0) if found else None
    return found


class Handler(BaseHTTPRequestHandler):
    """A keep-alive JSON handler; a fake's handler adds its routes."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else headers and body meet delayed ACKs: +40 ms
    json_type = "application/json"

    def read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def lowered_headers(self) -> dict[str, str]:
        return {key.lower(): value for key, value in self.headers.items()}

    def send_json(
        self,
        status: int,
        payload: dict[str, Any],
        headers: dict[str, str] | None = None,
        *,
        cut: bool = False,
    ) -> None:
        self.send_bytes(status, json.dumps(payload).encode(), self.json_type, headers, cut=cut)

    def send_bytes(
        self,
        status: int,
        data: bytes,
        kind: str = "application/octet-stream",
        headers: dict[str, str] | None = None,
        *,
        cut: bool = False,
    ) -> None:
        try:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2] if cut else data)
            if cut:
                self.wfile.flush()
                self.hang_up()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout); nothing to answer

    def hang_up(self) -> None:
        """Close the connection here, whatever was sent on it."""
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, format: str, *args: Any) -> None:
        return


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver listens with a backlog of 5: hundreds of clients connecting at once
    # (--concurrency 256) overflow it and wait out a 1 s SYN retry, which no server has.
    request_queue_size = 1024

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up is normal here; keep stderr for emotag.
        return


def serve(
    handler: type[BaseHTTPRequestHandler], stopping: threading.Event | None = None
) -> tuple[str, Callable[[], None]]:
    """Serve on 127.0.0.1 in a thread: the root URL, and a function that stops it (setting
    `stopping` first, so held and hanging requests end)."""
    server = Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop() -> None:
        if stopping is not None:
            stopping.set()
        server.shutdown()
        server.server_close()

    return f"http://127.0.0.1:{server.server_address[1]}", stop
