"""The NBI's one error type, shared by its REST routes and the dashboard's JSON routes."""

from __future__ import annotations


class ApiError(Exception):
    """Answered as JSON {"error": message} with this status (and reason phrase, headers)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        reason: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason
        self.headers = headers
