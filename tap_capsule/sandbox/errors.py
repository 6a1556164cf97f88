"""Exceptions that the request handler turns into Capsule's error answers (status + JSON body)."""

from __future__ import annotations


class ApiError(Exception):
    """An error answer: `status` and the exact JSON `body` Capsule would send."""

    def __init__(self, status: int, body: dict, headers: dict | None = None) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}


class NotFound(ApiError):
    def __init__(self) -> None:
        super().__init__(404, {"message": "Could not find resource"})


class MethodNotAllowed(ApiError):
    def __init__(self) -> None:
        super().__init__(405, {"message": "Method not allowed"})


class BadRequest(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(400, {"message": message})


class Invalid(ApiError):
    """422 in Capsule's shape: `{"message":"Validation Failed","errors":[{message,resource,field}]}`."""

    def __init__(self, errors: list[dict]) -> None:
        super().__init__(422, {"message": "Validation Failed", "errors": errors})
        self.errors = errors


def error(resource: str, field: str, message: str) -> dict:
    return {"message": message, "resource": resource, "field": field}
