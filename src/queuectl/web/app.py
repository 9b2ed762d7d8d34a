"""The ASGI application: routes, the token check, error mapping and protective headers."""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from queuectl import __version__
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
from queuectl.web.pool import ServicePool

log = logging.getLogger("queuectl.web")

STATIC = Path(__file__).parent / "static"
TOKEN_COOKIE = "queuectl_token"  # noqa: S105 (the name of the cookie, not a secret)
# No inline script or style may run: a command that slipped past escaping still cannot.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
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


def is_authorized(request: Request, token: str) -> bool:
    """True when the request carries the token as `Authorization: Bearer T`."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


def token_cookie(request: Request) -> str:
    """The cookie's name, per port: browsers share cookies between the ports of a host,
    and two dashboards on one machine must not overwrite each other's."""
    port = request.url.port
    return f"{TOKEN_COOKIE}_{port}" if port else TOKEN_COOKIE


def has_token_cookie(request: Request, token: str) -> bool:
    return hmac.compare_digest(request.cookies.get(token_cookie(request), ""), token)


def one_line(message: str) -> str:
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


class GuardMiddleware:
    """Adds the protective headers, and refuses a Host header we do not serve.

    On a loopback address only loopback names are accepted: a web page whose own name
    was re-pointed at 127.0.0.1 (DNS rebinding) then cannot read the API.
    """

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str] | None) -> None:
        self.app = app
        self.allowed = {host.lower() for host in allowed_hosts} if allowed_hosts else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.allowed is not None and _host_name(scope) not in self.allowed:
            response = JSONResponse({"error": "unknown Host header"}, status_code=421)
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _host_name(scope: Scope) -> str:
    """The Host header without its port: `[::1]:8765` -> `[::1]`, `localhost:80` -> `localhost`."""
    for name, value in scope.get("headers", []):
        if name == b"host":
            host = str(value.decode("latin-1")).lower()
            if host.startswith("["):
                return host.partition("]")[0] + "]"
            return host.rpartition(":")[0] if ":" in host else host
    return ""


def create_app(
    target: str | None,
    token: str,
    *,
    allowed_hosts: Sequence[str] | None = None,
    pool_size: int = 4,
) -> FastAPI:
    """The dashboard for the store at `target` (None: the default store).

    `token` guards every state-changing request; `allowed_hosts` (None: any) are the Host
    names the server answers to.
    """
    from queuectl.web import api, metrics, pages

    pool = ServicePool(target, pool_size)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pool.open()
        try:
            yield
        finally:
            pool.close()

    app = FastAPI(
        title="queuectl",
        version=__version__,
        description="The HTTP API of queuectl, a job queue for shell commands. Requests that "
        "change anything need the dashboard's token: `Authorization: Bearer TOKEN`.",
        docs_url=None,  # the interactive docs load scripts from a CDN, which the CSP forbids
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.pool = pool
    app.state.token = token
    app.state.target = target
    app.state.registry = metrics.registry_for(pool)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(metrics.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _add_error_handlers(app)
    app.add_middleware(GuardMiddleware, allowed_hosts=allowed_hosts)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    from queuectl.web.pages import error_page

    def respond(request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith(MACHINE_PATHS):
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            return JSONResponse({"error": message}, status_code=status, headers=headers)
        return error_page(request, status, message)

    async def queuectl_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, QueuectlError)
        status = status_of(exc)
        if status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc.message)
        return respond(request, status, one_line(exc.message))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        response = respond(request, exc.status_code, message)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return respond(request, 422, _describe(exc.errors()))

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


def _describe(errors: Sequence[Any]) -> str:
    """FastAPI's validation errors as one line: `query parameter limit: ...`."""
    parts = []
    for error in errors:
        where = [str(part) for part in error.get("loc", ())]
        if where and where[0] in ("query", "path", "body", "header"):
            where = [f"{where[0]} parameter", *where[1:]] if len(where) > 1 else where
        parts.append(f"{' '.join(where)}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"
