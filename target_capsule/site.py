"""Which Capsule account a session writes to, from `GET /site`, and files bound to one account.

Change logs, id maps and backup manifests record the account they belong to. A file of account A
used with account B's token would write A's changes into B (an undo deleting B's records by A's
ids), so every tool that reads one compares its account with the session's first and refuses a
mismatch in one line.
"""

from __future__ import annotations

import typing as t
from urllib.parse import urlsplit

from tap_capsule.api_client import raise_for_capsule_status, response_json

if t.TYPE_CHECKING:
    from tap_capsule.api_client import CapsuleSession


class AccountMismatch(Exception):  # noqa: N818 - names the refusal
    """A file names another account than the one the configuration writes to."""


def read_site(session: CapsuleSession) -> dict:
    """Capsule's `site` record (`url`, `subdomain`, `name`): one request."""
    response = session.call("GET", "/site")
    raise_for_capsule_status(response)
    site = (response_json(response) or {}).get("site")
    return site if isinstance(site, dict) else {}


def account_of(site: t.Mapping[str, t.Any] | None) -> str:
    """The account's name in files: the site's host (`acme.capsulecrm.com`), else its subdomain."""
    site = site or {}
    host = urlsplit(str(site.get("url") or "")).hostname
    return str(host or site.get("subdomain") or "unknown")


def check_account(found: object, expected: str, what: str) -> None:
    """Refuse `what` (a file) when it names no account or another one than `expected`."""
    if found is None or found == "":
        raise AccountMismatch(
            f"{what} names no account (written by an older version?); it cannot be checked "
            f"against {expected}, so it is not used"
        )
    if str(found) != expected:
        raise AccountMismatch(
            f"{what} belongs to the Capsule account {found}, but the configuration writes to "
            f"{expected}; use that account's configuration (nothing was changed)"
        )
