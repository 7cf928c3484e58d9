"""Domain errors. Services raise these; the API turns them into HTTP errors with the message,
and the CLI prints the message and exits with code 2."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


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


class TooLarge(AppError):
    status_code = 413


class UnsupportedMedia(AppError):
    status_code = 415


class UpstreamFailed(AppError):
    """A model server this request needed (say, the transcription service) failed or timed out."""

    status_code = 502


class Unavailable(AppError):
    """The database cannot be used (read-only, vanished, unreachable): nothing was changed."""

    status_code = 503
    retry_after_s = 30


class RateLimited(AppError):
    status_code = 429

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ErrorOut(BaseModel):
    """The body of every 4xx and 5xx reply of the JSON API."""

    detail: str


class FieldProblem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class InvalidInputOut(ErrorOut):
    """A 422: ``detail`` says what is wrong in one sentence, ``errors`` lists each field."""

    errors: list[FieldProblem] = []


def _error(description: str, model: type[BaseModel] = ErrorOut) -> dict[str, Any]:
    return {"model": model, "description": description}


API_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("The body is not valid JSON"),
    401: _error("A token is needed or was wrong"),
    403: _error("The token does not give access to this"),
    404: _error("No such session, turn or question"),
    409: _error("Not possible in the current state (answered already, finished, ...)"),
    413: _error("The request body is over the size limit"),
    422: _error("Invalid input", InvalidInputOut),
    429: _error("Rate limit or capacity reached; see Retry-After"),
    503: _error("The database or the grader is not available right now; see Retry-After"),
}
"""Error replies every JSON API router documents (what the exception handlers send)."""
