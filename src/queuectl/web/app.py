"""The ASGI application: routes, error handlers and protective headers, put together."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from queuectl import __version__
from queuectl.web import api, errors, metrics, pages
from queuectl.web.pool import ServicePool

STATIC = Path(__file__).parent / "static"
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
    errors.add_error_handlers(app)
    app.add_middleware(GuardMiddleware, allowed_hosts=allowed_hosts)
    return app
