"""`queuectl dashboard`: serve the web dashboard, the HTTP API and /metrics.

Its packages (the `dashboard` extra) are imported here, inside run(), so that every other
command starts without them.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from queuectl.cli.commands import Subparsers
from queuectl.cli.context import open_service
from queuectl.core.errors import MissingDependency, QueuectlError, UsageError

if TYPE_CHECKING:
    import socket

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
EXTRA = "pip install 'queuectl[dashboard]'"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "dashboard",
        help="serve the web dashboard, HTTP API and Prometheus metrics",
        description="Serve the web dashboard, the JSON API (/api/, described at "
        "/openapi.json), /metrics and /healthz until Ctrl+C. Requests that change "
        f"anything need the token. Needs the dashboard extra: {EXTRA}.",
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default {DEFAULT_HOST}); "
        "a non-loopback address needs an explicit token",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port to listen on (default {DEFAULT_PORT}; 0 picks a free one)",
    )
    parser.add_argument(
        "--token",
        help="the token that requests changing anything must carry "
        "(default: $QUEUECTL_TOKEN, else a new random one, printed at start)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, got {args.port}")
    token = args.token or os.environ.get("QUEUECTL_TOKEN") or None
    loopback = is_loopback(args.host)
    if not loopback and token is None:
        raise UsageError(
            f"refusing to listen on {args.host} without a token: anyone who can reach it "
            "could change the queue. Give one with --token or QUEUECTL_TOKEN, or listen "
            "on a loopback address"
        )
    try:
        import uvicorn

        from queuectl.web.app import create_app
    except ImportError as exc:
        raise MissingDependency(
            f"the dashboard needs the package {exc.name!r}, which is not installed: {EXTRA}"
        ) from None
    import secrets

    printed_token = token is None
    token = token or secrets.token_urlsafe(24)
    open_service(args).store.close()  # an unreachable store fails here, before listening
    sock = listen(args.host, args.port)
    allowed = (*LOOPBACK_NAMES, host_header_name(args.host)) if loopback else None
    app = create_app(args.db, token, allowed_hosts=allowed)
    base = f"http://{host_header_name(args.host)}:{sock.getsockname()[1]}/"
    if printed_token:
        print(f"Dashboard:  {base}?token={token}")
        print(f"API token:  {token}  (send it as `Authorization: Bearer TOKEN` to change things)")
    else:
        print(f"Dashboard:  {base}  (open {base}?token=TOKEN to enable actions)")
    print("Press Ctrl+C to stop.")
    sys.stdout.flush()
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # Ctrl+C is how a server is meant to stop
        pass
    finally:
        sock.close()
    return 0


def is_loopback(host: str) -> bool:
    """True when every address `host` stands for is a loopback one."""
    # Imported here: every command builds the parser, and so imports this module.
    import ipaddress
    import socket

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UsageError(f"cannot resolve --host {host!r}: {exc.strerror or exc}") from None
    return all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)


def host_header_name(host: str) -> str:
    """`host` as it appears in a URL and a Host header: IPv6 addresses in brackets."""
    bare = host.strip("[]")
    return f"[{bare}]".lower() if ":" in bare else bare.lower()


def listen(host: str, port: int) -> socket.socket:
    """Bind here rather than in uvicorn, so that a taken port is a one-line `error:`."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise QueuectlError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise QueuectlError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock
