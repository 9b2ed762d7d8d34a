"""POST /api/jobs applies the enqueue checks of issue 14: record-shaped jobs, 128 KiB."""

from __future__ import annotations

from fastapi.testclient import TestClient

from queuectl.core.fields import MAX_COMMAND_BYTES
from tests.web.conftest import AUTH


def test_api_enqueue_takes_a_record_shaped_job_and_refuses_a_huge_command(
    client: TestClient,
) -> None:
    record = {"id": "j1", "command": "true", "state": "pending", "attempts": 0}
    created = client.post("/api/jobs", json=record | {"created_at": 0}, headers=AUTH)
    assert created.status_code == 201, created.text
    assert created.json()["state"] == "pending"
    refused = client.post("/api/jobs", json=record | {"id": "j2", "attempts": 1}, headers=AUTH)
    assert refused.status_code == 422
    assert "queuectl counts" in refused.json()["error"]
    huge = {"command": "echo " + "x" * MAX_COMMAND_BYTES}
    refused = client.post("/api/jobs", json=huge, headers=AUTH)
    assert refused.status_code == 422
    assert "128 KiB" in refused.json()["error"]
    assert [job["id"] for job in client.get("/api/jobs").json()["jobs"]] == ["j1"]
