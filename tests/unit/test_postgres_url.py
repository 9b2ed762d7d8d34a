"""The store URL's own parameter, `pool_mode`, which libpq must never see (issue 15)."""

from __future__ import annotations

import pytest

from queuectl.core.errors import UsageError
from queuectl.store.postgres_url import parse_url


def test_pool_mode_transaction_is_read_and_removed() -> None:
    options = parse_url("postgresql://app@db:6432/jobs?sslmode=require&pool_mode=transaction")
    assert options.transaction_pooling is True
    assert options.conninfo == "postgresql://app@db:6432/jobs?sslmode=require"
    assert options.has_application_name is False


def test_a_url_without_it_is_passed_on_unchanged() -> None:
    url = "postgresql://app@db/jobs?application_name=billing"
    options = parse_url(url)
    assert (options.conninfo, options.transaction_pooling) == (url, False)
    assert options.has_application_name is True


def test_an_unknown_pool_mode_is_bad_usage() -> None:
    with pytest.raises(UsageError, match="pool_mode='statement'"):
        parse_url("postgresql://app@db/jobs?pool_mode=statement")
