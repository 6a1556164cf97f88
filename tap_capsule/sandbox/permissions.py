"""Which grant each operation needs: a 403 belongs to one operation, not to the whole token.

Reads need the `read` scope and writes `write`. On top of that, `PUT /users/{id}` needs the
`user_preference` scope; managing REST hooks needs an administrator using a registered OAuth app;
creating lost reasons and custom titles needs an administrator. A bad or missing token is a 401
for every request, before any of this.
"""

from __future__ import annotations

import typing as t

from tap_capsule.sandbox.wire import WRITE_METHODS, Response

if t.TYPE_CHECKING:  # pragma: no cover
    from tap_capsule.sandbox.auth import Grant

# (method, route template) → extra scope needed.
EXTRA_SCOPE = {("PUT", "/users/{id}"): "user_preference"}
# Route templates (any method) that need an administrator with an OAuth-app token.
ADMIN_APP_PREFIXES = ("/resthooks",)
# (method, route template) that need an administrator.
ADMIN_ONLY = frozenset({("POST", "/lostreasons"), ("POST", "/titles")})


def _insufficient_scope(scope: str, message: str) -> Response:
    challenge = f'Bearer realm="Capsule", error="insufficient_scope", scope="{scope}"'
    return Response.json(
        403, {"error": "insufficient_scope", "message": message}, {"WWW-Authenticate": challenge}
    )


def _forbidden(message: str) -> Response:
    return Response.json(403, {"error": "forbidden", "message": message})


def check(grant: Grant, method: str, template: str) -> Response | None:
    """The 403 answer `grant` gets for `method` on the route `template`, or None when allowed."""
    needed = "write" if method in WRITE_METHODS else "read"
    if needed not in grant.scopes:
        message = "This token can only read" if needed == "write" else "This token cannot read"
        return _insufficient_scope(needed, message)
    extra = EXTRA_SCOPE.get((method, template))
    if extra and extra not in grant.scopes:
        return _insufficient_scope(extra, f"This operation needs the {extra} scope")
    if template.startswith(ADMIN_APP_PREFIXES) and not (grant.admin and grant.oauth_app):
        return _forbidden(
            "Managing REST hooks needs an administrator using a registered OAuth application"
        )
    if (method, template) in ADMIN_ONLY and not grant.admin:
        return _forbidden("Only an administrator can do this")
    return None
