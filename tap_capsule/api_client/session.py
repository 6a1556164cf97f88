"""The one HTTP session of both plugins: every request to Capsule goes through `CapsuleSession`.

The session ties the other concerns together (auth, pacing, error interpretation) so the tap, the
target and the account tools spend the hourly budget the same way, retry the same failures and fail
with the same messages. Transient failures (5xx, timeouts, dropped connections, malformed bodies)
are retried with backoff; a connection that is refused before Capsule ever answered is a wrong
`api_url` or a sandbox that isn't running, so it ends the run at once with a line that says so.

Writes are not retried blindly. Capsule has no idempotency key, so a POST or PUT that failed after
it may have reached Capsule raises `AmbiguousWriteError`; the target then checks what Capsule holds.
"""

from __future__ import annotations

import json
import logging
import time
import typing as t
from urllib.parse import parse_qsl, urlparse, urlsplit

import requests
from typing_extensions import override

from tap_capsule.api_client.auth import CapsuleOAuthAuthenticator, make_authenticator
from tap_capsule.api_client.errors import (
    AmbiguousWriteError,
    CapsuleAuthError,
    CapsulePermissionError,
    CapsuleRetryError,
    CapsuleUnreachableError,
    auth_failure_message,
    raise_for_capsule_status,
)
from tap_capsule.api_client.pacing import RateLimitPacer, retry_delays
from tap_capsule.api_client.settings import DEFAULT_API_URL, validate_api_url
from tap_capsule.api_client.version import USER_AGENT

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})

logger = logging.getLogger(__name__)


class CapsuleSession(requests.Session):
    """A `requests.Session` that paces, authenticates, retries and explains failures.

    `send()` returns the final answer for statuses the caller must interpret (2xx, 4xx other than
    401/403/429); it raises for what nobody downstream can fix.
    """

    def __init__(
        self,
        config: t.Mapping[str, t.Any],
        *,
        user_agent: str = USER_AGENT,
        pacer: RateLimitPacer | None = None,
        sleep: t.Callable[[float], None] = time.sleep,
    ) -> None:
        """Auth, pacing and retries from the connection settings."""
        super().__init__()
        self.api_url = validate_api_url(config.get("api_url") or DEFAULT_API_URL)
        self.authenticator = make_authenticator(config)
        self.max_retries = int(config.get("max_retries", 5))
        self.timeout = float(config.get("request_timeout") or 60)
        self._sleep = sleep
        self.pacer = pacer or RateLimitPacer(
            reserve=float(config.get("rate_limit_reserve", 0.2)),
            max_wait=float(config.get("max_rate_limit_wait", 3900)),
            sleep=sleep,
        )
        self.headers.update({"Accept": "application/json", "User-Agent": user_agent})
        self._proxy_cache: dict[tuple[str, str], dict] = {}
        self._answered = False  # has anything at the API URL answered yet?
        # Requests that may have reached Capsule and whose answer was lost (a 5xx, a dropped
        # connection or read timeout, a malformed body): a 429 or a refusal never counts. A
        # DELETE retried here after such a try may find its own first try's work done.
        self.unanswered = 0

    # A plain-language entry point for code that is not an SDK stream (the target).
    def call(
        self, method: str, path: str, *, params: t.Mapping | None = None, json_body: object = None
    ) -> requests.Response:
        """One request to `path` (relative to the API URL) through the same pacing and retries."""
        url = path if path.startswith("http") else self.api_url + path
        return self.request(method, url, params=params, json=json_body, timeout=self.timeout)

    def pages(
        self, path: str, params: t.Mapping | None = None, page_size: int = 100
    ) -> t.Iterator[dict]:
        """Every page body of a list endpoint, following `Link: rel="next"` verbatim."""
        url: str | None = self.api_url + path
        first: dict = {**(params or {}), "perPage": page_size}
        query: t.Mapping | None = first
        while url:
            response = self.request("GET", url, params=query, timeout=self.timeout)
            raise_for_capsule_status(response)
            yield response_json(response) or {}
            url = response.links.get("next", {}).get("url")
            if url:
                # The link keeps the original query; anything it lacks (`since` on a deleted
                # feed, say) is added back, so a next page never reads something else.
                linked = {k for k, _ in parse_qsl(urlparse(url).query)}
                query = {k: v for k, v in first.items() if k not in linked}

    def paginate(
        self, path: str, list_key: str, params: t.Mapping | None = None, page_size: int = 100
    ) -> t.Iterator[dict]:
        """Every record of a list endpoint."""
        for body in self.pages(path, params, page_size):
            yield from body.get(list_key) or ()

    @override
    def send(self, request: requests.PreparedRequest, **kwargs: t.Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        if "proxies" not in kwargs:
            kwargs["proxies"] = self._proxies_for(request)
        method = (request.method or "GET").upper()
        path = urlparse(request.url or "").path
        waits = retry_delays()
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            self.pacer.before_request()
            self.authenticator(request)
            try:
                response = super().send(request, **kwargs)
            except requests.exceptions.ConnectTimeout as exc:
                # Never reached Capsule: safe to retry any method.
                self._transient(attempt, waits, method, path, type(exc).__name__)
                continue
            except (
                requests.exceptions.ConnectionError,
                requests.exceptions.Timeout,
                requests.exceptions.ChunkedEncodingError,
                ConnectionResetError,
            ) as exc:
                if not self._answered and connection_refused(exc):
                    # Nothing listens there: retrying for seconds would only blame Capsule for a
                    # wrong port or a sandbox that was never started. (Once the server has
                    # answered, a refusal is a restart, retried below like a dropped connection.)
                    raise CapsuleUnreachableError(
                        f"could not connect to {self.api_url} (connection refused): is `api_url` "
                        "right, is the sandbox running?"
                    ) from None
                self.unanswered += 1
                if method not in IDEMPOTENT_METHODS:
                    raise AmbiguousWriteError(
                        f"{method} {path}: {type(exc).__name__} before Capsule answered; the "
                        "write may or may not have been applied."
                    ) from None
                self._transient(attempt, waits, method, path, type(exc).__name__)
                continue

            self._answered = True
            self.pacer.observe(response)
            status = response.status_code
            if status == 429:
                response.close()
                self.pacer.wait_for_reset(f"HTTP 429 on {method} {path}")
                continue
            if (
                status == 401
                and not refreshed
                and isinstance(self.authenticator, CapsuleOAuthAuthenticator)
            ):
                response.close()
                self.authenticator.update_access_token()
                refreshed = True
                continue
            if status == 403:
                raise CapsulePermissionError(
                    auth_failure_message(status, method, path), method, path
                )
            if status == 401:
                raise CapsuleAuthError(auth_failure_message(status, method, path))
            if status >= 500:
                self.unanswered += 1
                if method not in IDEMPOTENT_METHODS:
                    raise AmbiguousWriteError(
                        f"{method} {path}: Capsule answered HTTP {status}; the write may or may "
                        "not have been applied.",
                        status,
                    )
                response.close()
                self._transient(attempt, waits, method, path, f"HTTP {status}")
                continue
            if 200 <= status < 300 and response.content and is_json(response):
                try:
                    # Parsed once, for response_json(); requests has no field of its own for it.
                    body = json.loads(response.content)
                    response.capsule_json = body  # type: ignore[attr-defined]
                except ValueError:
                    self.unanswered += 1
                    if method not in IDEMPOTENT_METHODS:
                        raise AmbiguousWriteError(
                            f"{method} {path}: Capsule answered HTTP {status} with a malformed "
                            "body; the write was probably applied.",
                            status,
                        ) from None
                    self._transient(attempt, waits, method, path, "malformed JSON body")
                    continue
            return response

    def pause(self, seconds: float) -> None:
        """Wait before a retry the caller makes itself (the target's writes), as `send` does."""
        self._sleep(seconds)

    def _proxies_for(self, request: requests.PreparedRequest) -> dict:
        """The proxies for this request's origin, read from the environment once per origin.

        requests reads every environment variable to resolve proxies on each `send()`: a third of
        the CPU of a small child-list request. The answer depends only on the origin.
        """
        origin = urlsplit(request.url or "")[:2]
        proxies = self._proxy_cache.get(origin)
        if proxies is None:
            proxies = requests.utils.resolve_proxies(request, dict(self.proxies), self.trust_env)
            self._proxy_cache[origin] = proxies
        return dict(proxies)

    def _transient(
        self, attempt: int, waits: t.Iterator[float], method: str, path: str, what: str
    ) -> None:
        if attempt > self.max_retries:
            raise CapsuleRetryError(
                f"{method} {path} kept failing ({what}) after {self.max_retries} retries; "
                "Capsule may be having trouble. Run again later (the bookmarks are safe)."
            )
        delay = next(waits)
        logger.warning(
            "%s %s: %s; retry %d of %d in %.1f s",
            method,
            path,
            what,
            attempt,
            self.max_retries,
            delay,
        )
        self._sleep(delay)


def is_json(response: requests.Response) -> bool:
    """A JSON answer (every API answer but a file's bytes, which `GET /attachments/{id}` sends)."""
    kind = response.headers.get("Content-Type")
    return kind is None or "json" in kind.lower()


def response_json(response: requests.Response) -> t.Any:  # noqa: ANN401 - any JSON value
    """The body `CapsuleSession` already parsed (parsing once keeps the tap's CPU cost down)."""
    cached = getattr(response, "capsule_json", None)
    if cached is not None:
        return cached
    return response.json() if response.content else None


def connection_refused(exc: BaseException) -> bool:
    """Whether `exc` comes from a refused TCP connection (nothing listening at that port).

    requests wraps the socket's `ConnectionRefusedError` in urllib3's errors (`MaxRetryError`
    with a `reason`, `NewConnectionError` raised from the socket error); follow every link.
    """
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        if isinstance(item, ConnectionRefusedError):
            return True
        seen.add(id(item))
        todo.extend([item.__cause__, item.__context__, getattr(item, "reason", None), *item.args])
    return False
