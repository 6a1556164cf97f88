"""Which permission a refused (403) write lacks, so the rejection can say what to fix.

Capsule answers 403 per operation, not only per token: user preferences need the
`user_preference` scope; REST hooks need an administrator and a registered OAuth app; creating
lost reasons and custom titles needs an administrator. Anything else refused with 403 lacks the
`write` scope (a read-only token).
"""

from __future__ import annotations

WRITE_SCOPE = "the `write` scope (a read-only token cannot write)"

NEEDS: dict[str, str] = {
    "users": "the `user_preference` scope (a token created with `read write user_preference`)",
    "resthooks": "an administrator user and a token from a registered OAuth app",
    "lost_reasons": "an administrator user",
    "custom_titles": "an administrator user",
}


def missing_permission(stream: str) -> str:
    """What the token lacks when Capsule refuses a write of this stream with 403."""
    return NEEDS.get(stream, WRITE_SCOPE)
