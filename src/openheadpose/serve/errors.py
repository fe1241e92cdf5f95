"""The one error type of the service: an HTTP status, a stable code and a message naming the problem.

Every error leaves the server as ``{"error": {"code", "message", "request_id"}}``.
"""

from __future__ import annotations


class ApiError(Exception):
    """A request the service refuses or could not answer.

    Args:
        status: HTTP status (4xx: the request; 5xx: the server).
        code: a stable, machine-readable name (``not_an_image``, ``too_many_pixels`` ...).
        message: what was wrong, naming the input or option, and what to do.
        headers: extra response headers (``Retry-After`` on 503).
    """

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self, request_id: str | None) -> dict:
        return {"error": {"code": self.code, "message": self.message, "request_id": request_id}}
