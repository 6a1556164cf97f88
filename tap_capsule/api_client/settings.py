"""The connection settings both plugins share, and the checks that refuse unusable values early.

The tap and the target take the same names with the same meanings (token, OAuth refresh, API URL,
rate-limit reserve, retries, timeout). Declaring them once keeps the two `--about` outputs and the
docs in step, and checking them before any request turns a mistyped token or a plain-http URL to
another machine into one line that says what to fix, instead of a failure halfway through a run.
"""

from __future__ import annotations

import ipaddress
import typing as t
from urllib.parse import urlsplit

from singer_sdk import typing as th

from tap_capsule.api_client.errors import CapsuleConfigError
from tap_capsule.secrets import SECRET_SETTINGS

DEFAULT_API_URL = "https://api.capsulecrm.com/api/v2"


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
