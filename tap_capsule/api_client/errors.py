"""What can go wrong when talking to Capsule, and how each failure reads to the user.

Both plugins and the account tools catch these classes to decide what a failure means: a setting to
fix (`CapsuleConfigError`), credentials to fix (`CapsuleAuthError`), a budget to wait for
(`CapsuleRateLimitError`), an outage (`CapsuleRetryError`), a write that may or may not have landed
(`AmbiguousWriteError`) or Capsule's own refusal of one request (`CapsuleAPIError`). They live
apart from the session so that code which only interprets answers needs no HTTP machinery, and so
that every message is written in one place: each says what to fix and never holds a secret.
"""

from __future__ import annotations

import typing as t
from urllib.parse import urlparse

if t.TYPE_CHECKING:
    import requests


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


class CapsuleUnreachableError(CapsuleConfigError):
    """Nothing listens at `api_url`: a setting to fix (or a sandbox to start), not an outage."""


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
