"""The HTTP adapter: a threaded stdlib server that moves bytes in and out of `App.handle()`.

HTTP/1.1 with keep-alive; every answer carries an exact Content-Length and leaves in one write,
with Nagle's algorithm off. (The stdlib handler writes the headers and the body separately: on a
keep-alive connection the second small write then waits for the client's delayed ACK, about 40 ms
per response for a few milliseconds of work.) The emulator itself lives in `app.py` (request
pipeline), `routes.py` (URL map), `responses.py` and `extras.py` (handlers), `views.py`
(rendering and paging), `store.py` (state and write semantics) and `seed/` (data).
"""

from __future__ import annotations

import contextlib
import email.utils
import http
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tap_capsule.sandbox.app import App
from tap_capsule.sandbox.wire import API

__all__ = ["API", "App", "Handler", "SandboxHTTPServer"]


class Handler(BaseHTTPRequestHandler):
    """One connection: parse each request, ask the app, answer in a single write."""

    protocol_version = "HTTP/1.1"
    server_version = "CapsuleSandbox/1.0"
    disable_nagle_algorithm = True  # TCP_NODELAY: a response never waits for an ACK
    timeout = 30  # an idle keep-alive connection is closed after this
    server: SandboxHTTPServer

    def version_string(self) -> str:
        """`Server` header: the sandbox's name, without Python's version."""
        return self.server_version

    def setup(self) -> None:
        """Register the connection so a stopping server can wake its thread."""
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        """Unregister the connection."""
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        """No access log: tests read request counts from the admin API instead."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        """`Date` from the sandbox clock: Capsule stamps `updatedAt` and `Date` from one clock."""
        if timestamp is None:
            timestamp = self.server.app.clock.now().timestamp()
        return email.utils.formatdate(timestamp, usegmt=True)

    def send_answer(self, status: int, headers: dict, body: bytes) -> None:
        """Status line, headers and body in one write."""
        try:
            phrase = http.HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        lines = [
            f"{self.protocol_version} {status} {phrase}",
            f"Server: {self.version_string()}",
            f"Date: {self.date_time_string()}",
            *(f"{name}: {value}" for name, value in headers.items()),
            f"Content-Length: {len(body)}",
        ]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "strict")
        self.wfile.write(head if self.command == "HEAD" else head + body)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        response = self.server.app.handle(self.command, self.path, self.headers, body)
        if response.delay:
            time.sleep(response.delay)
        if response.hold is not None:
            response.hold()  # until a test releases it (it may kill the client meanwhile)
        if response.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        try:
            self.send_answer(response.status, response.headers, response.body)
        except OSError:  # the client is gone (killed while its answer was held)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve  # noqa: N815 - the stdlib's names


class SandboxHTTPServer(ThreadingHTTPServer):
    """A thread per connection; `close_connections` wakes idle keep-alive threads on shutdown."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], app: App, handler: type[Handler] = Handler
    ) -> None:
        """Bind `address` (port 0: a free one) and tell `app` where it listens."""
        self.app = app
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, handler)
        host, port = self.server_address[:2]
        if isinstance(host, bytes):  # only for AF_UNIX addresses, which the sandbox never uses
            host = host.decode()
        app.origin = f"http://{host}:{port}"

    def track(self, conn: socket.socket, add: bool) -> None:
        """Remember (or forget) an open connection."""
        with self._conn_lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def close_connections(self) -> None:
        """Wake handler threads parked on idle keep-alive sockets so they exit and close them."""
        with self._conn_lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
