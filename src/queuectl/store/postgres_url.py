"""The store URL of a PostgreSQL target: what libpq gets and what queuectl keeps for itself.
Without the driver, so that the lean `enqueue` path can read it too."""

from __future__ import annotations

from queuectl.core.errors import UsageError

APPLICATION_NAME = "queuectl"  # how doctor tells queuectl's connections from others
POOL_MODE = "pool_mode"  # the URL parameter queuectl reads and libpq never sees
POOL_MODES = ("session", "transaction")


class ConnectOptions:
    """The store URL split into what libpq gets and what queuectl does with the rest.
    (A plain class: dataclasses would cost the lean `enqueue` path its import.)"""

    __slots__ = ("conninfo", "has_application_name", "transaction_pooling")

    def __init__(
        self, *, conninfo: str, transaction_pooling: bool, has_application_name: bool
    ) -> None:
        self.conninfo = conninfo  # the URL without queuectl's own parameters
        self.transaction_pooling = transaction_pooling  # no LISTEN, no prepares, no SETs
        self.has_application_name = has_application_name  # the URL names the application


def parse_url(url: str) -> ConnectOptions:
    """Read and strip `pool_mode`; refuse a value queuectl does not know (bad usage)."""
    if "?" not in url:
        return ConnectOptions(conninfo=url, transaction_pooling=False, has_application_name=False)
    from urllib.parse import parse_qsl, urlencode, urlsplit  # only for a URL with parameters

    parts = urlsplit(url)
    params = parse_qsl(parts.query, keep_blank_values=True)
    modes = [value for key, value in params if key == POOL_MODE]
    for mode in modes:
        if mode not in POOL_MODES:
            raise UsageError(
                f"invalid {POOL_MODE}={mode!r} in the store URL: use session or transaction"
            )
    kept = [(key, value) for key, value in params if key != POOL_MODE]
    conninfo = parts._replace(query=urlencode(kept)).geturl() if modes else url
    return ConnectOptions(
        conninfo=conninfo,
        transaction_pooling="transaction" in modes,
        has_application_name=any(key == "application_name" for key, _ in kept),
    )
