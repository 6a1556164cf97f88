"""HTTP behaviour shared by tap and target: auth, rate-limit pacing, retries and error messages.

Everything that talks to Capsule goes through `CapsuleSession`, so the two plugins spend the
hourly budget the same way and fail with the same messages. Two waits are kept apart on purpose: a
429 waits for `X-RateLimit-Reset` (up to an hour), while 5xx, timeouts, dropped connections and
malformed bodies get a short exponential backoff and never wait for the reset.

Writes are not retried blindly. Capsule has no idempotency key, so a POST or PUT that failed after
it may have reached Capsule raises `AmbiguousWriteError`; the target then checks what Capsule holds.
"""

from __future__ import annotations

import datetime
import email.utils
import ipaddress
import json
import logging
import math
import threading
import time
import typing as t
from importlib import metadata
from urllib.parse import parse_qsl, urlparse, urlsplit

import backoff
import requests
from singer_sdk import typing as th
from singer_sdk.authenticators import BearerTokenAuthenticator, OAuthAuthenticator
from typing_extensions import override

from tap_capsule.secrets import SECRET_SETTINGS
from tap_capsule.token_cache import TokenCache

DEFAULT_API_URL = "https://api.capsulecrm.com/api/v2"
DISTRIBUTION = "tap-capsule"  # both packages, tap_capsule and target_capsule, ship in this one


def package_version() -> str:
    """The installed distribution's version, from its metadata (what `--about` reports)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


USER_AGENT = f"tap-capsule/{package_version()}"
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})

logger = logging.getLogger(__name__)


# --- Errors: what went wrong and what to do about it, never a secret -----------------------------


class CapsuleError(Exception):
    """Base of every error this layer raises."""


class CapsuleConfigError(CapsuleError):
    """A setting is unusable (bad URL, missing token)."""


class CapsuleAuthError(CapsuleError):
    """401/403: the run cannot continue until the user fixes the credentials."""


class CapsulePermissionError(CapsuleAuthError):
    """403: the token may not do this one operation (a scope or an administrator is missing)."""

    def __init__(self, message: str, method: str, path: str) -> None:
        """Keep the refused operation: the target rejects only that one's records."""
        super().__init__(message)
        self.status = 403
        self.method = method
        self.path = path


class CapsuleRateLimitError(CapsuleError):
    """The rate-limit reset is further away than the user allows us to wait."""


class CapsuleRetryError(CapsuleError):
    """Transient failures outlasted the retries."""


class AmbiguousWriteError(CapsuleError):
    """A write failed in a way that leaves open whether Capsule applied it."""

    def __init__(self, message: str, status: int | None = None) -> None:
        """Keep Capsule's status (None for a dropped connection or a malformed body)."""
        super().__init__(message)
        self.status = status  # Capsule's HTTP status, when it answered at all


class CapsuleAPIError(CapsuleError):
    """A permanent 4xx answer, carrying Capsule's own message."""

    def __init__(
        self, status: int, method: str, path: str, message: str, errors: list | None = None
    ) -> None:
        """Keep the status, the request and Capsule's message and per-field errors for rejects."""
        self.status = status
        self.method = method
        self.path = path
        self.capsule_message = message
        self.errors = errors or []
        super().__init__(f"{method} {path} failed with HTTP {status}: {message}")


class CapsuleNotFound(CapsuleAPIError):  # noqa: N818 - names the answer, like the other 4xx classes
    """404: the record or parent is gone."""


# --- Settings shared by both plugins ------------------------------------------------------------


def connection_settings() -> th.PropertiesList:
    """Settings of both plugins: the same names and meanings for the tap and the target."""
    return th.PropertiesList(
        th.Property(
            "access_token",
            th.StringType,
            required=True,
            secret=True,
            title="Access token",
            description="Capsule personal access token or OAuth access token, sent as "
            "`Authorization: Bearer`.",
        ),
        th.Property(
            "refresh_token",
            th.StringType,
            secret=True,
            title="OAuth refresh token",
            description="Optional. With `client_id` and `client_secret`, a 401 or expiry refreshes "
            "the access token at `<api origin>/oauth/token`; a rotated refresh token is kept for "
            "the rest of the run.",
        ),
        th.Property(
            "oauth_token_cache",
            th.StringType,
            title="OAuth token cache file",
            description="Optional file that carries a rotated refresh token (and its access "
            "token) to the next process: Meltano's discovery and sync, and later scheduled runs. "
            "Written with mode 0600; keep it as private as the settings. Without it, a rotated "
            "refresh token lives only for one process.",
        ),
        th.Property(
            "client_id",
            th.StringType,
            secret=True,
            title="OAuth client id",
            description="OAuth app client id, for `refresh_token`.",
        ),
        th.Property(
            "client_secret",
            th.StringType,
            secret=True,
            title="OAuth client secret",
            description="OAuth app client secret, for `refresh_token`.",
        ),
        th.Property(
            "api_url",
            th.StringType,
            default=DEFAULT_API_URL,
            title="API base URL",
            description="Capsule API v2 base URL (a sandbox or proxy). Plain http:// is refused "
            "except for loopback hosts.",
        ),
        th.Property(
            "rate_limit_reserve",
            th.NumberType,
            default=0.2,
            title="Rate-limit reserve",
            description="Share (0–0.9) of the hourly request budget left untouched for people "
            "and other integrations using the same Capsule user. When the rest is spent, the "
            "run waits for the window to reset.",
        ),
        th.Property(
            "max_rate_limit_wait",
            th.IntegerType,
            default=3900,
            title="Longest rate-limit wait (s)",
            description="Longest wait for Capsule's rate-limit window to reset (after a 429 or "
            "when the budget is spent). A longer wait ends the run with an error instead.",
        ),
        th.Property(
            "max_retries",
            th.IntegerType,
            default=5,
            title="Retries of transient errors",
            description="Retries of 5xx answers, timeouts, dropped connections and malformed "
            "bodies, with exponential backoff from 0.5 s (capped at 30 s).",
        ),
        th.Property(
            "request_timeout",
            th.NumberType,
            default=60,
            title="Request timeout (s)",
            description="Seconds to wait for Capsule's answer before treating it as dropped.",
        ),
    )


def validate_api_url(url: str) -> str:
    """Refuse URLs that would send the token in clear text to another machine."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise CapsuleConfigError(f"api_url must be an http(s) URL, got {url!r}")
    if parts.username or parts.password:
        raise CapsuleConfigError("api_url must not carry credentials; use access_token")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise CapsuleConfigError(
            f"api_url {url!r} uses plain http:// to a non-loopback host; the access token "
            "would travel unencrypted. Use https://, or http:// only for localhost."
        )
    return url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_origin(api_url: str) -> str:
    """Scheme and host of the API URL: where Capsule's OAuth endpoints live."""
    parts = urlsplit(api_url)
    return f"{parts.scheme}://{parts.netloc}"


# --- Auth ---------------------------------------------------------------------------------------


class CapsuleOAuthAuthenticator(OAuthAuthenticator):
    """Bearer auth that can refresh through Capsule's OAuth endpoint.

    The access token from the settings is used until Capsule rejects it or it expires; the refresh
    token Capsule rotates is kept for the rest of the run (never logged), and in `cache` for later
    processes when the user names one.
    """

    def __init__(
        self,
        *,
        access_token: str | None,
        refresh_token: str,
        client_id: str,
        client_secret: str,
        token_url: str,
        timeout: float,
        cache: TokenCache | None = None,
    ) -> None:
        """Start from the configured tokens, or from the cache when it holds a newer pair."""
        super().__init__(auth_endpoint=token_url, client_id=client_id, client_secret=client_secret)
        self.access_token = access_token
        self.refresh_token = refresh_token
        self._timeout = timeout
        self._cache = cache
        cached = cache.load() if cache else None
        if cached:
            self.access_token = cached.get("access_token") or access_token
            self.refresh_token = cached["refresh_token"]
        if self.access_token:
            self.last_refreshed = _utcnow()
            self.expires_in = None  # trust it until Capsule answers 401

    @property
    @override
    def oauth_request_body(self) -> dict:
        return {
            "grant_type": "refresh_token",
            "refresh_token": self.refresh_token,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }

    @override
    def update_access_token(self) -> None:
        logger.info("Refreshing the Capsule access token")
        started = _utcnow()
        try:
            resp = requests.post(
                self.auth_endpoint,
                data=self.oauth_request_payload,
                headers={"Accept": "application/json", "User-Agent": USER_AGENT},
                timeout=self._timeout,
            )
        except requests.RequestException as exc:
            raise CapsuleAuthError(
                f"Could not reach Capsule's token endpoint to refresh the access token "
                f"({type(exc).__name__})."
            ) from None
        if resp.status_code != 200:
            raise CapsuleAuthError(
                f"Capsule refused the token refresh (HTTP {resp.status_code}). Check "
                "`refresh_token`, `client_id` and `client_secret`; a refresh token that was "
                "already rotated cannot be reused."
            )
        body = resp.json()
        self.access_token = body["access_token"]
        refresh = body.get("refresh_token") or self.refresh_token
        self.refresh_token = refresh
        self.expires_in = int(body["expires_in"]) if body.get("expires_in") else None
        self.last_refreshed = started
        if self._cache is not None and refresh:
            self._cache.save(
                access_token=self.access_token,
                refresh_token=refresh,
                expires_in=self.expires_in,
            )


def clean_secret(config: t.Mapping[str, t.Any], key: str) -> str | None:
    """A secret setting without surrounding whitespace; refused if whitespace is inside it.

    A token pasted with a trailing newline would otherwise go into the `Authorization` header,
    where `requests` refuses it with an error that quotes the whole header, token included.
    """
    value = config.get(key)
    if value is None:
        return None
    text = str(value).strip()
    if any(ch.isspace() or not ch.isprintable() for ch in text):
        raise CapsuleConfigError(
            f"{key} has whitespace inside it (a space, line break or control character); copy "
            "it again, whole and on one line"
        )
    return text or None


def check_connection_settings(config: t.Mapping[str, t.Any]) -> None:
    """Refuse unusable connection settings up front (`CapsuleConfigError`), before any work."""
    for key in SECRET_SETTINGS:
        clean_secret(config, key)
    validate_api_url(config.get("api_url") or DEFAULT_API_URL)


def make_authenticator(
    config: t.Mapping[str, t.Any],
) -> BearerTokenAuthenticator | CapsuleOAuthAuthenticator:
    """Bearer auth from `access_token`, with OAuth refresh when the refresh settings are given."""
    config = {**config, **{k: clean_secret(config, k) for k in SECRET_SETTINGS}}
    token = config.get("access_token")
    refresh = config.get("refresh_token")
    if refresh:
        missing = [k for k in ("client_id", "client_secret") if not config.get(k)]
        if missing:
            raise CapsuleConfigError(
                f"refresh_token is set but {' and '.join(missing)} is missing; OAuth refresh "
                "needs all three."
            )
        url = api_origin(validate_api_url(config.get("api_url") or DEFAULT_API_URL))
        return CapsuleOAuthAuthenticator(
            access_token=token,
            refresh_token=refresh,
            client_id=config["client_id"],
            client_secret=config["client_secret"],
            token_url=f"{url}/oauth/token",
            timeout=float(config.get("request_timeout") or 60),
            cache=TokenCache(
                config["oauth_token_cache"],
                client_id=config["client_id"],
                configured_refresh=refresh,
            )
            if config.get("oauth_token_cache")
            else None,
        )
    if not token:
        raise CapsuleConfigError(
            "access_token is not set. Create a personal access token in Capsule (My Preferences "
            "→ API Authentication Tokens) or give OAuth refresh settings."
        )
    return BearerTokenAuthenticator(token=token)


# --- Rate-limit pacing --------------------------------------------------------------------------


class RateLimitPacer:
    """Spends Capsule's hourly budget without running into the wall.

    Reads `X-RateLimit-Limit/Remaining/Reset` from every answer. Requests go out at full speed
    while plenty of budget is left; in the last quarter of the usable budget they are spread
    evenly until the reset; once only the reserve is left, the pacer waits for the window to reset.
    It also tracks the server clock from `Date`, which the tap's bookmarks rely on.
    """

    SPREAD_FROM = 0.25  # start spreading requests when this share of the usable budget is left

    def __init__(
        self,
        *,
        reserve: float = 0.2,
        max_wait: float = 3900,
        sleep: t.Callable[[float], None] = time.sleep,
        clock: t.Callable[[], float] = time.time,
    ) -> None:
        """Budget settings, and the sleep and clock it uses (tests pass fake ones)."""
        if not 0 <= reserve <= 0.9:
            raise CapsuleConfigError(f"rate_limit_reserve must be between 0 and 0.9, got {reserve}")
        self.reserve = reserve
        self.max_wait = max_wait
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self.limit: int | None = None
        self.remaining: int | None = None
        self.reset_at: float | None = None
        self.clock_offset: float | None = None  # server time minus local time, in seconds
        self._last_request_at = 0.0
        self._spreading_until: float | None = None
        self.spacing = 0.0  # seconds between requests while pacing
        self.requests_sent = 0
        self.waited_seconds = 0.0

    @property
    def usable_left(self) -> int | None:
        """Requests left this hour above the reserve, or None before Capsule reported any."""
        if self.limit is None or self.remaining is None:
            return None
        return self.remaining - math.ceil(self.limit * self.reserve)

    def before_request(self) -> None:
        """Wait as the budget requires before a request goes out, and count it."""
        with self._lock:
            now = self._clock()
            left = self.usable_left
            if left is not None and self.reset_at is not None and self.reset_at > now:
                if left <= 0:
                    self._wait_until_reset(
                        f"only the reserved {self.remaining} of {self.limit} requests are left "
                        f"this hour (rate_limit_reserve={self.reserve})"
                    )
                elif left < (self.limit or 0) * (1 - self.reserve) * self.SPREAD_FROM:
                    interval = (self.reset_at - now) / left
                    self.spacing = interval
                    if self._spreading_until != self.reset_at:
                        self._spreading_until = self.reset_at
                        logger.warning(
                            "Pacing: %d usable requests left until the rate-limit window resets "
                            "at %s; spacing requests about %.1f s apart",
                            left,
                            _iso(self.reset_at),
                            interval,
                        )
                    delay = self._last_request_at + interval - now
                    if delay > 0:
                        self._sleep(delay)
                        self.waited_seconds += delay
            self._last_request_at = self._clock()
            self.requests_sent += 1

    def wait_for_reset(self, reason: str) -> None:
        """Wait until Capsule's window resets (a 429), within `max_wait`."""
        with self._lock:
            self._wait_until_reset(reason)

    def _wait_until_reset(self, reason: str) -> None:
        now = self._clock()
        reset = self.reset_at if self.reset_at and self.reset_at > now else now + 60
        wait = reset - now + 1  # Capsule's reset is whole seconds; add one to land after it
        if wait > self.max_wait:
            raise CapsuleRateLimitError(
                f"Capsule's rate limit: {reason}, and the window resets in {wait:.0f} s, longer "
                f"than max_rate_limit_wait ({self.max_wait:.0f} s). Run again after "
                f"{_iso(reset)}, or raise max_rate_limit_wait."
            )
        logger.warning(
            "Waiting %.0f s for Capsule's rate-limit window to reset at %s: %s",
            wait,
            _iso(reset),
            reason,
        )
        self._sleep(wait)
        self.waited_seconds += wait
        self.remaining = None  # unknown until the next answer

    def observe(self, response: requests.Response) -> None:
        """Take the budget and Capsule's clock from an answer's headers."""
        headers = response.headers
        with self._lock:
            try:
                if "X-RateLimit-Limit" in headers:
                    self.limit = int(headers["X-RateLimit-Limit"])
                if "X-RateLimit-Remaining" in headers:
                    self.remaining = int(headers["X-RateLimit-Remaining"])
                if "X-RateLimit-Reset" in headers:
                    self.reset_at = float(headers["X-RateLimit-Reset"])
            except ValueError:
                logger.debug("Ignoring unparsable rate-limit headers")
            date = headers.get("Date")
            if date:
                try:
                    server = email.utils.parsedate_to_datetime(date).timestamp()
                    self.clock_offset = server - self._clock()
                except (TypeError, ValueError):
                    pass

    def server_now(self) -> float | None:
        """Capsule's clock as last seen (None before the first answer)."""
        if self.clock_offset is None:
            return None
        return self._clock() + self.clock_offset

    def pacing_note(self) -> str:
        """While requests are spread out: how far apart, and when that ends ('' otherwise)."""
        until = self._spreading_until
        if until is None or until <= self._clock():
            return ""
        return f"; pacing: about {self.spacing:.1f} s between requests until {_iso(until)}"

    def budget_line(self) -> str:
        """The budget left, for log lines: requests left this hour and when the window resets."""
        if self.limit is None:
            return "rate-limit budget not reported yet"
        return (
            f"rate-limit budget: {self.remaining} of {self.limit} requests left this hour, "
            f"resets at {_iso(self.reset_at)}"
        )


# --- The session --------------------------------------------------------------------------------


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
                if method not in IDEMPOTENT_METHODS:
                    raise AmbiguousWriteError(
                        f"{method} {path}: {type(exc).__name__} before Capsule answered; the "
                        "write may or may not have been applied."
                    ) from None
                self._transient(attempt, waits, method, path, type(exc).__name__)
                continue

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


def retry_delays() -> t.Iterator[float]:
    """Waits between tries of a failing request: 0.5 s, 1 s, 2 s, ... capped at 30 s.

    One schedule for every retry both plugins make, reads here and writes in the target.
    """
    waits = backoff.expo(base=2, factor=0.5, max_value=30)
    next(waits)  # python-backoff's generator starts with a 0-length first value
    return waits


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


def auth_failure_message(status: int, method: str, path: str) -> str:
    """What to fix after a 401 or 403, in one sentence that never holds a token."""
    if status == 401:
        return (
            f"Capsule rejected the access token (HTTP 401 on {method} {path}). Check "
            "`access_token`: it may be mistyped, revoked or expired. Create a new personal "
            "access token in Capsule under My Preferences → API Authentication Tokens, or set "
            "`refresh_token`, `client_id` and `client_secret` to refresh an OAuth token."
        )
    return (
        f"Capsule refused {method} {path} (HTTP 403): the token lacks the permission. Reading "
        "needs the `read` scope; writing needs `write` (a read-only personal token cannot "
        "write); REST hooks need an administrator and a registered OAuth app."
    )


def raise_for_capsule_status(response: requests.Response) -> None:
    """Turn a permanent 4xx answer into `CapsuleAPIError` with Capsule's own message."""
    status = response.status_code
    if status < 400:
        return
    method = getattr(response.request, "method", None) or "GET"  # hand-made Responses have none
    path = urlparse(response.url).path
    message, errors = capsule_error_detail(response)
    cls = CapsuleNotFound if status == 404 else CapsuleAPIError
    raise cls(status, method, path, message, errors)


def capsule_error_detail(response: requests.Response) -> tuple[str, list]:
    """Capsule's `message` plus its field errors, as one readable line."""
    try:
        body = response.json()
    except ValueError:
        return (response.reason or f"HTTP {response.status_code}"), []
    if not isinstance(body, dict):
        return str(body)[:300], []
    message = str(body.get("message") or body.get("error") or response.reason or "")
    errors = body.get("errors") or []
    details = [
        e.get("message", "") + (f" (field {e['field']})" if e.get("field") else "")
        for e in errors
        if isinstance(e, dict)
    ]
    if details:
        message = f"{message}: {'; '.join(details)}"
    return message, errors


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _iso(epoch: float | None) -> str:
    if epoch is None:
        return "unknown"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
