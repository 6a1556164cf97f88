"""Exceptions that the request handler turns into Capsule's error answers (status + JSON body)."""

from __future__ import annotations


class ApiError(Exception):
    """An error answer: `status` and the exact JSON `body` Capsule would send."""

    def __init__(self, status: int, body: dict, headers: dict | None = None) -> None:
        """An answer of `status` with `body` (and extra headers)."""
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}


class NotFoundError(ApiError):
    """404 with Capsule's body: the record, its parent or a referenced record does not exist."""

    def __init__(self) -> None:
        """Capsule's one 404 answer."""
        super().__init__(404, {"message": "Could not find resource"})


class MethodNotAllowedError(ApiError):
    """405: the path exists, the method does not (e.g. PUT on a custom title)."""

    def __init__(self) -> None:
        """Capsule's one 405 answer."""
        super().__init__(405, {"message": "Method not allowed"})


class BadRequestError(ApiError):
    """400: a malformed request (bad JSON, a bad query parameter); `message` says which."""

    def __init__(self, message: str) -> None:
        """A 400 whose message names what to fix."""
        super().__init__(400, {"message": message})


class ValidationFailedError(ApiError):
    """422 in Capsule's shape.

    The body is `{"message": "Validation Failed", "errors": [{message, resource, field}]}`.
    """

    def __init__(self, errors: list[dict]) -> None:
        """A 422 listing every broken rule."""
        super().__init__(422, {"message": "Validation Failed", "errors": errors})
        self.errors = errors


def error(resource: str, field: str, message: str) -> dict:
    """One item of a 422's `errors`: Capsule names the resource (wrapper key) and the field."""
    return {"message": message, "resource": resource, "field": field}
