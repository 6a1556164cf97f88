"""The one HTTP layer of both plugins: auth, rate-limit pacing, retries and error messages.

Everything that talks to Capsule goes through `CapsuleSession`, so the tap, the target and the
account tools spend the hourly budget the same way and fail with the same messages. One module per
concern, so each can be read and changed on its own:

- `errors`: the exception classes and how Capsule's error answers become readable messages;
- `settings`: the connection settings both plugins declare, and the checks that refuse bad values;
- `auth`: bearer tokens and OAuth refresh;
- `pacing`: the hourly budget from `X-RateLimit-*`, and the backoff between retries;
- `session`: `CapsuleSession`, which ties them together for every request;
- `version`: the release both plugins report and send in their User-Agent.

Callers import from the package (`from tap_capsule.api_client import CapsuleSession`); the names
below are its interface, whichever module holds them.
"""

from __future__ import annotations

from tap_capsule.api_client.auth import CapsuleOAuthAuthenticator, make_authenticator
from tap_capsule.api_client.errors import (
    AmbiguousWriteError,
    CapsuleAPIError,
    CapsuleAuthError,
    CapsuleConfigError,
    CapsuleError,
    CapsuleNotFound,
    CapsulePermissionError,
    CapsuleRateLimitError,
    CapsuleRetryError,
    CapsuleUnreachableError,
    auth_failure_message,
    capsule_error_detail,
    raise_for_capsule_status,
)
from tap_capsule.api_client.pacing import RateLimitPacer, retry_delays
from tap_capsule.api_client.session import (
    IDEMPOTENT_METHODS,
    CapsuleSession,
    connection_refused,
    response_json,
)
from tap_capsule.api_client.settings import (
    DEFAULT_API_URL,
    api_origin,
    check_connection_settings,
    clean_secret,
    connection_settings,
    validate_api_url,
)
from tap_capsule.api_client.version import (
    DISTRIBUTION,
    USER_AGENT,
    package_version,
    user_agent,
)

__all__ = [
    "DEFAULT_API_URL",
    "DISTRIBUTION",
    "IDEMPOTENT_METHODS",
    "USER_AGENT",
    "AmbiguousWriteError",
    "CapsuleAPIError",
    "CapsuleAuthError",
    "CapsuleConfigError",
    "CapsuleError",
    "CapsuleNotFound",
    "CapsuleOAuthAuthenticator",
    "CapsulePermissionError",
    "CapsuleRateLimitError",
    "CapsuleRetryError",
    "CapsuleSession",
    "CapsuleUnreachableError",
    "RateLimitPacer",
    "api_origin",
    "auth_failure_message",
    "capsule_error_detail",
    "check_connection_settings",
    "clean_secret",
    "connection_refused",
    "connection_settings",
    "make_authenticator",
    "package_version",
    "raise_for_capsule_status",
    "response_json",
    "retry_delays",
    "user_agent",
    "validate_api_url",
]
