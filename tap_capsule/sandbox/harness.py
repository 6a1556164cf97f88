"""Driving a sandbox from tests: `Sandbox` (in-process server thread) and `SandboxClient` (any
running sandbox, e.g. one started with the CLI). Both talk to the admin endpoints over HTTP, so a
test drives an in-process and a subprocess sandbox the same way. Stdlib only (urllib).
"""

from __future__ import annotations

import json
import threading
import typing as t
import urllib.error
import urllib.request

from tap_capsule.sandbox.server import API, App, SandboxHTTPServer

# Never send loopback admin calls through an HTTP proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class SandboxError(RuntimeError):
    pass


class SandboxClient:
    """Admin access to a running sandbox at `origin` (e.g. "http://127.0.0.1:8765")."""

    def __init__(self, origin: str) -> None:
        self.origin = origin.rstrip("/")
        if self.origin.endswith(API):
            self.origin = self.origin[: -len(API)]

    @property
    def url(self) -> str:
        """The API base URL, what the tap and target get as `api_url`."""
        return self.origin + API

    def _call(self, method: str, path: str, payload: dict | None = None) -> t.Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            self.origin + "/_sandbox" + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with _OPENER.open(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            with exc:
                detail = exc.read().decode("utf-8", "replace")
            raise SandboxError(f"{method} /_sandbox{path} -> {exc.code}: {detail}") from None

    def requests(self) -> dict:
        """{"total", "writes", "oauth", "by_path": {"GET /parties": n}, "by_route": {...}}."""
        return self._call("GET", "/requests")

    def reset_requests(self) -> None:
        self._call("POST", "/requests/reset", {})

    def state(self) -> dict:
        return self._call("GET", "/state")

    def set_faults(
        self,
        error_every: int = 0,
        error_status: int = 503,
        slow_every: int = 0,
        slow_seconds: float = 0.0,
        drop_every: int = 0,
        malformed_every: int = 0,
        throttle_next: int = 0,
        throttle_reset_seconds: float = 2.0,
        fault_after_write: bool = False,
    ) -> dict:
        """Replace the fault settings; the per-request counter restarts."""
        return self._call(
            "POST",
            "/faults",
            {
                "error_every": error_every,
                "error_status": error_status,
                "slow_every": slow_every,
                "slow_seconds": slow_seconds,
                "drop_every": drop_every,
                "malformed_every": malformed_every,
                "throttle_next": throttle_next,
                "throttle_reset_seconds": throttle_reset_seconds,
                "fault_after_write": fault_after_write,
            },
        )

    def set_rate_limit(self, limit: int = 4000, window: float = 3600) -> dict:
        return self._call("POST", "/ratelimit", {"limit": limit, "window": window})

    def set_clock(self, now: str | None = None) -> str:
        return self._call("POST", "/clock", {"now": now})["now"]

    def touch(self, stream: str, id: int, **changes: t.Any) -> dict:  # noqa: A002
        return self._call("POST", "/touch", {"stream": stream, "id": id, "changes": changes})[
            "record"
        ]

    def delete_record(self, stream: str, id: int) -> None:  # noqa: A002
        self._call("POST", "/delete", {"stream": stream, "id": id})

    def restrict_record(self, stream: str, id: int) -> None:  # noqa: A002
        self._call("POST", "/restrict", {"stream": stream, "id": id})


class Sandbox(SandboxClient):
    """An in-process sandbox on a server thread: `with Sandbox(token=...) as sb: sb.url`."""

    def __init__(
        self,
        token: str,
        scale: int = 50,
        seed: int = 1,
        rate_limit: int = 4000,
        rate_window: float = 3600,
        read_only_token: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        refresh_token: str | None = None,
        faults: dict | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.app = App(
            token=token,
            scale=scale,
            seed=seed,
            rate_limit=rate_limit,
            rate_window=rate_window,
            read_only_token=read_only_token,
            client_id=client_id,
            client_secret=client_secret,
            refresh_token=refresh_token,
            faults=faults,
        )
        self._address = (host, port)
        self._server: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None
        super().__init__("http://unstarted")

    def start(self) -> Sandbox:
        if self._server is None:
            self._server = SandboxHTTPServer(self._address, self.app)
            self.origin = self.app.origin
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="capsule-sandbox",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: t.Any) -> None:
        self.stop()
