"""Bearer tokens, what each may do, and the OAuth refresh grant with refresh-token rotation.

Each token carries a grant: its OAuth scopes (`read`, `write`, `user_preference`), whether its user
is an administrator, and whether it was issued to a registered OAuth app (REST hooks need one).
The original token stays valid after a refresh; each refresh issues a new access token and a new
refresh token, and the old refresh token stops working (clients must keep the latest).
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading

SCOPES = ("read", "write", "user_preference")
FLAGS = ("admin", "oauth_app")
# The main token by default: an administrator's OAuth-app token with every scope, so a test can
# exercise every documented operation; narrower grants are opt-in.
FULL_GRANT = "read write user_preference admin oauth_app"
# What a refresh issues: the default OAuth scope ("read write") for the same user, from the app.
OAUTH_SCOPE = "read write"


@dataclasses.dataclass(frozen=True)
class Grant:
    """What one token may do."""

    scopes: frozenset[str]
    admin: bool = False
    oauth_app: bool = False

    @classmethod
    def parse(cls, spec: str) -> Grant:
        """`"read write admin"` → a grant; an unknown word is a ValueError that names it."""
        words = spec.replace(",", " ").split()
        unknown = [w for w in words if w not in SCOPES + FLAGS]
        if unknown:
            allowed = ", ".join(SCOPES + FLAGS)
            raise ValueError(f"unknown token grant {unknown[0]!r}; use words from: {allowed}")
        return cls(
            frozenset(w for w in words if w in SCOPES), "admin" in words, "oauth_app" in words
        )

    @property
    def scope(self) -> str:
        """The scopes as OAuth writes them (space-separated, in Capsule's order)."""
        return " ".join(s for s in SCOPES if s in self.scopes)


READ_ONLY = Grant(frozenset({"read"}), admin=True)


class Auth:
    """The account's tokens and its OAuth client."""

    def __init__(
        self,
        token: str,
        read_only_token: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        refresh_token: str | None = None,
        grant: str = FULL_GRANT,
        extra_tokens: dict[str, str] | None = None,
    ) -> None:
        """`token` gets `grant`; `read_only_token` only reads; `extra_tokens` maps token → grant."""
        if not token:
            raise ValueError("a token is required")
        self._lock = threading.Lock()
        main = Grant.parse(grant)
        self.tokens: dict[str, Grant] = {token: main}
        if read_only_token:
            self.tokens[read_only_token] = READ_ONLY
        for extra, spec in (extra_tokens or {}).items():
            if not extra:
                raise ValueError("an extra token must not be empty")
            self.tokens[extra] = Grant.parse(spec)
        self.oauth_grant = Grant(Grant.parse(OAUTH_SCOPE).scopes, main.admin, oauth_app=True)
        self.client_id, self.client_secret = client_id, client_secret
        self.refresh_token = refresh_token
        self.refreshes = 0

    def grant(self, header: str | None) -> Grant | None:
        """The grant of an `Authorization: Bearer` header, or None when it is missing/unknown."""
        if not header or header[:7].lower() != "bearer ":
            return None
        with self._lock:
            return self.tokens.get(header[7:].strip())

    def refresh(self, form: dict[str, str]) -> tuple[int, dict]:
        """POST /oauth/token: (status, JSON body)."""
        with self._lock:
            if form.get("grant_type") != "refresh_token":
                return 400, {
                    "error": "unsupported_grant_type",
                    "error_description": "only grant_type=refresh_token is supported",
                }
            if (
                not self.client_id
                or form.get("client_id") != self.client_id
                or form.get("client_secret") != self.client_secret
            ):
                return 401, {
                    "error": "invalid_client",
                    "error_description": "client authentication failed",
                }
            if not self.refresh_token or form.get("refresh_token") != self.refresh_token:
                return 400, {
                    "error": "invalid_grant",
                    "error_description": "the refresh token is invalid or was rotated",
                }
            self.refreshes += 1
            seed = f"{self.refresh_token}:{self.refreshes}".encode()
            access = "sbx-at-" + hashlib.sha256(b"a" + seed).hexdigest()[:32]
            self.refresh_token = "sbx-rt-" + hashlib.sha256(b"r" + seed).hexdigest()[:32]
            self.tokens[access] = self.oauth_grant
            return 200, {
                "access_token": access,
                "refresh_token": self.refresh_token,
                "token_type": "bearer",
                "expires_in": 604799,
                "scope": self.oauth_grant.scope,
                "subdomain": "sandbox",
            }
