"""Driving a sandbox from tests.

`Sandbox` runs one in-process on a server thread; `SandboxClient` drives any running sandbox (e.g.
one started with the CLI). Both talk to the admin endpoints over HTTP, so a
test drives an in-process and a subprocess sandbox the same way. Stdlib only (urllib).
"""

from __future__ import annotations

import json
import threading
import typing as t
import urllib.error
import urllib.request

from tap_capsule.sandbox.auth import FULL_GRANT
from tap_capsule.sandbox.models import OWNER_CLEARS_TEAM
from tap_capsule.sandbox.server import API, App, SandboxHTTPServer

# Never send loopback admin calls through an HTTP proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class SandboxError(RuntimeError):
    """An admin call the sandbox refused (the status and its answer are in the message)."""


class SandboxClient:
    """Admin access to a running sandbox at `origin` (e.g. "http://127.0.0.1:8765")."""

    def __init__(self, origin: str) -> None:
        """A client of the sandbox at `origin` (the API base URL works too)."""
        self.origin = origin.rstrip("/")
        if self.origin.endswith(API):
            self.origin = self.origin[: -len(API)]

    @property
    def url(self) -> str:
        """The API base URL, what the tap and target get as `api_url`."""
        return self.origin + API

    def _call(self, method: str, path: str, payload: dict | None = None) -> t.Any:  # noqa: ANN401 - any JSON answer
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
        """Forget the counted requests."""
        self._call("POST", "/requests/reset", {})

    def state(self) -> dict:
        """Every table, link, deleted and restricted feed and job, as stored (full shapes)."""
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
        lost_answer_every: int = 0,
        hold_write: int = 0,
        hold_before_write: int = 0,
        throttle_write: int = 0,
        refuse_unknown_embed: bool = False,
    ) -> dict:
        """Replace the fault settings; the per-request counter restarts.

        `lost_answer_every`: every k-th write is applied and answered 502. `hold_write`: the n-th
        write from now is applied and its answer held until `release()` (see `held()`).
        `hold_before_write`: the n-th write from now is held before it is applied; released, it is
        dropped unapplied (the client was killed before its request reached Capsule).
        `throttle_write`: the n-th write from now is answered 429 once (not applied).
        `refuse_unknown_embed`: an `embed` value no endpoint documents is answered 400.
        """
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
                "lost_answer_every": lost_answer_every,
                "hold_write": hold_write,
                "hold_before_write": hold_before_write,
                "throttle_write": throttle_write,
                "refuse_unknown_embed": refuse_unknown_embed,
            },
        )

    def held(self) -> int:
        """How many requests the sandbox holds back now (`hold_write`, `hold_before_write`)."""
        return int(self._call("GET", "/held")["held"])

    def release(self) -> int:
        """Send every held answer (to whoever is still listening); how many there were."""
        return int(self._call("POST", "/release", {})["released"])

    def set_site(self, **site: str) -> dict:
        """Change what `GET /site` says (`url`, `subdomain`, `name`): another account."""
        return self._call("POST", "/site", site)["site"]

    def set_rate_limit(self, limit: int = 4000, window: float = 3600) -> dict:
        """A new rate-limit window of `limit` requests per `window` seconds, starting now."""
        return self._call("POST", "/ratelimit", {"limit": limit, "window": window})

    def set_clock(self, now: str | None = None) -> str:
        """Freeze the sandbox clock at `now` (ISO 8601), or let it run again with None."""
        return self._call("POST", "/clock", {"now": now})["now"]

    def touch(self, stream: str, id: int, **changes: t.Any) -> dict:  # noqa: A002, ANN401 - Capsule's name; any field values
        """Edit a record as a user would in Capsule's UI (updatedAt bumps unless given)."""
        return self._call("POST", "/touch", {"stream": stream, "id": id, "changes": changes})[
            "record"
        ]

    def delete_record(self, stream: str, id: int) -> None:  # noqa: A002 - Capsule's name
        """Delete a record as a user would in Capsule's UI (into the deleted feed, cascading)."""
        self._call("POST", "/delete", {"stream": stream, "id": id})

    def restrict_record(self, stream: str, id: int) -> None:  # noqa: A002 - Capsule's name
        """Hide a record from the token's user (it appears as a restricted stub)."""
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
        grant: str = FULL_GRANT,
        extra_tokens: dict[str, str] | None = None,
        owner_clears_team: t.Iterable[str] = OWNER_CLEARS_TEAM,
        large: int = 0,
    ) -> None:
        """A sandbox not yet listening; `start()` or `with` binds `host:port` (0: a free port).

        `large` > 0 serves a large account of that many parties, generated on demand.

        `grant` is what `token` may do (default: every scope, an administrator, an OAuth app);
        `extra_tokens` maps more tokens to grants such as `"read write"` (a normal user's token).
        """
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
            grant=grant,
            extra_tokens=extra_tokens,
            owner_clears_team=owner_clears_team,
            large=large,
        )
        self._address = (host, port)
        self._server: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None
        super().__init__("http://unstarted")

    def start(self) -> Sandbox:
        """Listen and serve on a daemon thread; `origin` and `url` are then known."""
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
        """Stop serving and close every connection."""
        server, self._server = self._server, None
        if server is None:
            return
        self.app.faults.release()  # no handler thread stays parked on a held answer
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Sandbox:
        """Start."""
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Stop."""
        self.stop()
