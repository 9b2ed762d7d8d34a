"""Schemathesis generates requests from /openapi.json: the API never answers 500 and its
answers match what the description promises (status codes, content types, bodies)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from queuectl.web.app import create_app
from tests.conftest import Queuectl
from tests.web.conftest import AUTH, TOKEN, enqueue_all, run_burst

pytestmark = pytest.mark.in_process

OPERATIONS = [
    ("/api/status", "GET"),
    ("/api/jobs", "GET"),
    ("/api/jobs", "POST"),
    ("/api/jobs/{job_id}", "GET"),
    ("/api/jobs/{job_id}/retry", "POST"),
    ("/api/jobs/{job_id}/cancel", "POST"),
    ("/api/dlq/retry-all", "POST"),
    ("/api/dlq/purge", "POST"),
    ("/api/throughput", "GET"),
    ("/api/queues", "GET"),
    ("/healthz", "GET"),
    ("/metrics", "GET"),
]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def app(q_shared: Queuectl) -> Iterator[TestClient]:
    """One app per backend for every operation, over jobs in several states."""
    enqueue_all(
        q_shared,
        {"id": "done", "command": "echo done"},
        {"id": "dead", "command": "exit 1", "max_retries": 1},
        {"id": "later", "command": "true", "scheduled_at": "2099-01-01T00:00:00Z"},
    )
    run_burst(q_shared)
    with TestClient(create_app(q_shared.target, TOKEN)) as client:
        yield client


def test_the_description_covers_every_operation(app: TestClient) -> None:
    paths = app.get("/openapi.json").json()["paths"]
    described = {(path, method.upper()) for path, item in paths.items() for method in item}
    assert described == set(OPERATIONS)


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_operation_conforms_to_its_description(app: TestClient, path: str, method: str) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app.app)
    operation = schema[path][method]

    @settings(
        max_examples=20,
        deadline=None,
        database=None,
        derandomize=True,  # the same requests on every run: a failure can be repeated
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def check(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(headers=AUTH, checks=CHECKS)

    check()
