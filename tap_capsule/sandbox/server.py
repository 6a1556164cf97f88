"""The HTTP adapter: a threaded stdlib server that moves bytes in and out of `App.handle()`.

HTTP/1.1 with keep-alive; every answer carries an exact Content-Length. The emulator itself lives in
`app.py` (request pipeline), `routes.py` (URL map), `responses.py` and `extras.py` (handlers),
`views.py` (rendering and paging), `store.py` (state and write semantics) and `seed.py` (data).
"""

from __future__ import annotations

import email.utils
import socket
import threading
import time
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tap_capsule.sandbox.app import App
from tap_capsule.sandbox.wire import API


class Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive: every answer has an exact Content-Length."""

    protocol_version = "HTTP/1.1"
    server_version = "CapsuleSandbox/1.0"

    def version_string(self) -> str:
        return self.server_version

    timeout = 30  # an idle keep-alive connection is closed after this

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)  # type: ignore[attr-defined]

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: t.Any) -> None:  # noqa: A002
        pass

    def date_time_string(self, timestamp: float | None = None) -> str:
        """`Date` from the sandbox clock: Capsule stamps `updatedAt` and `Date` from one clock."""
        if timestamp is None:
            timestamp = self.server.app.clock.now().timestamp()  # type: ignore[attr-defined]
        return email.utils.formatdate(timestamp, usegmt=True)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        response = self.server.app.handle(self.command, self.path, self.headers, body)  # type: ignore[attr-defined]
        if response.delay:
            time.sleep(response.delay)
        if response.drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, Handler)
        host, port = self.server_address[:2]
        app.origin = f"http://{host}:{port}"

    def track(self, conn: socket.socket, add: bool) -> None:
        with self._conn_lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def close_connections(self) -> None:
        """Wake handler threads parked on idle keep-alive sockets so they exit and close them."""
        with self._conn_lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


__all__ = ["API", "App", "Handler", "SandboxHTTPServer"]
