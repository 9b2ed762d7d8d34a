"""Errors as responses: JSON for machines (/api/, /metrics, /healthz), a small HTML page
for a person, and never a password from the store's target in either."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from queuectl.core.errors import (
    DuplicateDedupeKey,
    DuplicateJobId,
    InvalidJobSpec,
    JobNotFound,
    QueuectlError,
    StoreUnavailable,
    UsageError,
    WrongState,
)
from queuectl.core.redact import redact
from queuectl.web.pages import error_page

log = logging.getLogger("queuectl.web")

# Prefixes whose errors are JSON; elsewhere (the pages) a person gets a small HTML page.
MACHINE_PATHS = ("/api/", "/metrics", "/healthz", "/openapi.json")


def status_of(exc: QueuectlError) -> int:
    """The HTTP status of a queuectl error (its exit code says only 1 or 2)."""
    if isinstance(exc, DuplicateJobId | DuplicateDedupeKey | WrongState):
        return 409
    if isinstance(exc, InvalidJobSpec):
        return 422
    if isinstance(exc, UsageError):
        return 400
    if isinstance(exc, JobNotFound):
        return 404
    if isinstance(exc, StoreUnavailable):
        return 503
    return 500


def one_line(message: str) -> str:
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


def add_error_handlers(app: FastAPI) -> None:
    """Map every exception a route can raise to a response."""

    def respond(request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith(MACHINE_PATHS):
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            return JSONResponse({"error": message}, status_code=status, headers=headers)
        return error_page(request, status, message)

    async def queuectl_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, QueuectlError)
        status = status_of(exc)
        message = redact(one_line(exc.message), request.app.state.target)
        if status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, message)
        return respond(request, status, message)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        response = respond(request, exc.status_code, message)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return respond(request, 422, describe_invalid(exc.errors()))

    async def unexpected_error(request: Request, exc: Exception) -> Response:
        # A bug: the log gets the traceback, the client a one-line JSON error.
        log.exception("%s %s failed", request.method, request.url.path)
        return respond(request, 500, "internal error; the dashboard's log has the details")

    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        QueuectlError: queuectl_error,
        HTTPException: http_error,
        RequestValidationError: validation_error,
        Exception: unexpected_error,
    }
    for kind, handler in handlers.items():
        app.add_exception_handler(kind, handler)


def describe_invalid(errors: Sequence[Any]) -> str:
    """FastAPI's validation errors as one line: `query parameter limit: ...`."""
    parts = []
    for error in errors:
        where = [str(part) for part in error.get("loc", ())]
        if where and where[0] in ("query", "path", "body", "header"):
            where = [f"{where[0]} parameter", *where[1:]] if len(where) > 1 else where
        parts.append(f"{' '.join(where)}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"
