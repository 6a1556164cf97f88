"""How requests prove who they are: a bearer token, refreshed through Capsule's OAuth endpoint.

A personal access token is sent as it is. With OAuth refresh settings, an expired or rejected access
token is refreshed once and the rotated refresh token is kept for the rest of the run (and in the
token cache for later processes), because Capsule accepts each refresh token only once. The session
calls the authenticator before every try, so a refresh in the middle of a run is seen by the next
request of every stream.
"""

from __future__ import annotations

import datetime
import logging
import typing as t

import requests
from singer_sdk.authenticators import BearerTokenAuthenticator, OAuthAuthenticator
from typing_extensions import override

from tap_capsule.api_client.errors import CapsuleAuthError, CapsuleConfigError
from tap_capsule.api_client.settings import (
    DEFAULT_API_URL,
    api_origin,
    clean_secret,
    validate_api_url,
)
from tap_capsule.api_client.version import USER_AGENT
from tap_capsule.secrets import SECRET_SETTINGS
from tap_capsule.token_cache import TokenCache

logger = logging.getLogger(__name__)


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


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)
