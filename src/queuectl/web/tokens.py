"""The dashboard's token in a browser: the cookie that remembers it, per port."""

from __future__ import annotations

import hmac

from fastapi import Request

TOKEN_COOKIE = "queuectl_token"  # noqa: S105 (the name of the cookie, not a secret)


def token_cookie(request: Request) -> str:
    """The cookie's name, per port: browsers share cookies between the ports of a host,
    and two dashboards on one machine must not overwrite each other's."""
    port = request.url.port
    return f"{TOKEN_COOKIE}_{port}" if port else TOKEN_COOKIE


def has_token_cookie(request: Request, token: str) -> bool:
    """True when the browser has shown the token once (`/?token=T`) and kept the cookie."""
    return hmac.compare_digest(request.cookies.get(token_cookie(request), ""), token)
