"""Domain errors. Services raise these; the API turns them into HTTP errors with the message,
and the CLI prints the message and exits with code 2."""

from __future__ import annotations


class AppError(Exception):
    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(AppError):
    status_code = 404


class Conflict(AppError):
    status_code = 409


class InvalidInput(AppError):
    status_code = 422


class Unauthorized(AppError):
    status_code = 401


class Forbidden(AppError):
    status_code = 403


class Unavailable(AppError):
    """The database cannot be used (read-only, vanished, unreachable): nothing was changed."""

    status_code = 503
    retry_after_s = 30


class RateLimited(AppError):
    status_code = 429

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
