"""The JSON API in-process, on both backends (SPEC 3)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from queuectl.core.errors import StoreUnavailable
from tests.conftest import Queuectl, parse_time
from tests.web.conftest import AUTH, TOKEN, enqueue_all, run_burst

pytestmark = pytest.mark.in_process

JOB_FIELDS = {
    "id", "command", "state", "queue", "priority", "attempts", "max_retries", "timeout",
    "created_at", "updated_at", "scheduled_at", "run_at", "started_at", "finished_at",
    "exit_code", "last_error", "output", "locked_by", "locked_at", "cwd", "env",
    "retry_on_exit", "fatal_on_exit", "dedupe_key", "depends_on", "hooks",
}  # fmt: skip
POST_ROUTES = [
    "/api/jobs",
    "/api/jobs/some-job/retry",
    "/api/jobs/some-job/cancel",
    "/api/dlq/retry-all",
    "/api/dlq/purge",
]


def error_of(response: Any, status: int) -> str:
    """The API's failure shape: the status and {"error": "one line"}, nothing else."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"], str)
    assert body["error"]
    assert "\n" not in body["error"]
    assert "Traceback" not in body["error"]
    return str(body["error"])


def ids(page: dict[str, Any]) -> list[str]:
    return [job["id"] for job in page["jobs"]]


# -- enqueue --------------------------------------------------------------------------


def test_enqueue_creates_a_job(client: TestClient, q: Queuectl) -> None:
    body = {"id": "web-1", "command": "echo hi", "queue": "mail", "priority": 5}
    response = client.post("/api/jobs", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == "/api/jobs/web-1"
    job = response.json()
    assert set(job) == JOB_FIELDS
    assert (job["id"], job["state"], job["queue"]) == ("web-1", "pending", "mail")
    assert job["priority"] == 5
    assert job["max_retries"] == 3  # the config default, as for `queuectl enqueue`
    parse_time(job["created_at"])
    assert q.state("web-1") == "pending"


def test_enqueue_generates_an_id(client: TestClient) -> None:
    response = client.post("/api/jobs", json={"command": "true"}, headers=AUTH)
    assert response.status_code == 201
    assert client.get(f"/api/jobs/{response.json()['id']}").status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"{not json", 400, "invalid JSON"),
        (b"\xff\xfe", 400, "UTF-8"),
        (b"[1, 2]", 422, "expected a JSON object"),
        (b'{"command": ""}', 422, "command"),
        (b'{"command": "true", "colour": "red"}', 422, "unknown key 'colour'"),
        (b'{"command": "true", "max_retries": -1}', 422, "max_retries"),
        (b'{"command": "true", "queue": "a b"}', 422, "queue"),
        (b'{"command": "true", "scheduled_at": "soon"}', 422, "invalid time"),
        (b'{"id": "x", "command": "true", "id": "y"}', 422, "duplicate"),
    ],
)
def test_enqueue_refuses_bad_input_like_the_cli(
    client: TestClient, q: Queuectl, body: bytes, status: int, fragment: str
) -> None:
    message = error_of(client.post("/api/jobs", content=body, headers=AUTH), status)
    assert fragment in message
    if status == 422:  # the same words as `queuectl enqueue`
        cli = q.run("enqueue", body.decode())
        assert cli.returncode == 2
        assert cli.stderr.strip() == f"error: {message}"
    assert client.get("/api/status").json()["jobs"]["total"] == 0


def test_enqueue_of_a_taken_id_is_a_conflict(client: TestClient) -> None:
    assert client.post("/api/jobs", json={"id": "a", "command": "true"}, headers=AUTH).is_success
    response = client.post("/api/jobs", json={"id": "a", "command": "false"}, headers=AUTH)
    assert "already exists" in error_of(response, 409)
    assert client.get("/api/jobs/a").json()["command"] == "true"


def test_enqueue_of_a_held_dedupe_key_is_a_conflict(client: TestClient) -> None:
    body = {"id": "a", "command": "true", "dedupe_key": "nightly", "fatal_on_exit": [2]}
    created = client.post("/api/jobs", json=body, headers=AUTH)
    assert (created.json()["dedupe_key"], created.json()["fatal_on_exit"]) == ("nightly", [2])
    again = {"id": "b", "command": "true", "dedupe_key": "nightly"}
    response = client.post("/api/jobs", json=again, headers=AUTH)
    assert error_of(response, 409) == "a job with dedupe key 'nightly' is already pending (a)"
    assert client.get("/api/jobs/b").status_code == 404


@pytest.mark.parametrize("route", POST_ROUTES)
def test_changes_need_the_token(client: TestClient, route: str) -> None:
    client.post("/api/jobs", json={"id": "some-job", "command": "true"}, headers=AUTH)
    for auth in (None, "Bearer wrong-token", f"Basic {TOKEN}", f"bearer {TOKEN}x"):
        headers = {"Authorization": auth} if auth else {}
        response = client.post(route, json={"command": "true"}, headers=headers)
        assert "token" in error_of(response, 401), auth
        assert response.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/status").json()["jobs"] == {
        "total": 1, "pending": 1, "processing": 0, "completed": 0, "failed": 0, "dead": 0,
        "cancelled": 0,
    }  # fmt: skip


# -- reading --------------------------------------------------------------------------


def test_status_counts_jobs_per_state(client: TestClient, q: Queuectl) -> None:
    enqueue_all(
        q,
        {"id": "ok", "command": "true"},
        {"id": "bad", "command": "exit 3", "max_retries": 1},
        {"id": "later", "command": "true", "scheduled_at": "2099-01-01T00:00:00Z"},
    )
    run_burst(q)
    status = client.get("/api/status").json()
    assert status["jobs"] == {
        "total": 3, "pending": 1, "processing": 0, "completed": 1, "failed": 0, "dead": 1,
        "cancelled": 0,
    }  # fmt: skip
    assert status["workers"] == []  # the burst worker has stopped
    parse_time(status["now"])


def test_list_jobs_newest_first_in_pages(client: TestClient, q: Queuectl) -> None:
    enqueue_all(q, *({"id": f"j{n}", "command": "true"} for n in range(7)))
    first = client.get("/api/jobs", params={"limit": 3}).json()
    assert ids(first) == ["j6", "j5", "j4"]
    assert (first["offset"], first["limit"], first["next_offset"]) == (0, 3, 3)
    assert "output" not in first["jobs"][0]  # lists leave out the (large) output
    assert set(first["jobs"][0]) == JOB_FIELDS - {"output"}
    second = client.get("/api/jobs", params={"limit": 3, "offset": 3}).json()
    assert ids(second) == ["j3", "j2", "j1"]
    last = client.get("/api/jobs", params={"limit": 3, "offset": 6}).json()
    assert (ids(last), last["next_offset"]) == (["j0"], None)
    assert client.get("/api/jobs", params={"offset": 50}).json()["jobs"] == []


def test_list_jobs_filters_by_state_and_queue(client: TestClient, q: Queuectl) -> None:
    enqueue_all(
        q,
        {"id": "a", "command": "true", "queue": "mail"},
        {"id": "b", "command": "exit 1", "max_retries": 1},
        {"id": "c", "command": "true", "queue": "mail", "scheduled_at": "2099-01-01T00:00:00Z"},
    )
    run_burst(q)
    assert ids(client.get("/api/jobs", params={"queue": "mail"}).json()) == ["c", "a"]
    assert ids(client.get("/api/jobs", params={"state": "dead"}).json()) == ["b"]
    both = client.get("/api/jobs", params=[("state", "dead"), ("state", "pending")]).json()
    assert ids(both) == ["c", "b"]
    mail_pending = client.get("/api/jobs", params={"state": "pending", "queue": "mail"}).json()
    assert ids(mail_pending) == ["c"]


@pytest.mark.parametrize(
    "params",
    [{"state": "finished"}, {"limit": 0}, {"limit": 501}, {"offset": -1}, {"queue": "a b"}],
)
def test_list_jobs_refuses_bad_parameters(client: TestClient, params: dict[str, Any]) -> None:
    error_of(client.get("/api/jobs", params=params), 422)


def test_show_job_with_history_and_output(client: TestClient, q: Queuectl) -> None:
    q.config("backoff-max", "0")
    q.enqueue(id="flaky", command="echo out; echo err >&2; exit 4", max_retries=2)
    run_burst(q)
    job = client.get("/api/jobs/flaky").json()
    assert job["state"] == "dead"
    assert job["output"] == "out\nerr\n"
    assert [attempt["attempt"] for attempt in job["history"]] == [1, 2]
    assert {attempt["exit_code"] for attempt in job["history"]} == {4}
    assert [attempt["outcome"] for attempt in job["history"]] == ["failed", "failed"]
    assert job == q.job("flaky")  # the same object as `queuectl show --json`


def test_unknown_job_is_404(client: TestClient) -> None:
    assert "nope" in error_of(client.get("/api/jobs/nope"), 404)
    error_of(client.get("/api/jobs/%C3%A9t%C3%A9"), 404)


def test_throughput_counts_finished_attempts_per_minute(client: TestClient, q: Queuectl) -> None:
    enqueue_all(q, {"command": "true"}, {"command": "true"}, {"command": "false", "max_retries": 1})
    run_burst(q)
    minutes = client.get("/api/throughput").json()["minutes"]
    assert len(minutes) == 60
    starts = [parse_time(minute["start"]) for minute in minutes]
    assert starts == sorted(starts)
    assert sum(m["completed"] for m in minutes) == 2
    assert sum(m["failed"] for m in minutes) == 1
    assert len(client.get("/api/throughput", params={"minutes": 5}).json()["minutes"]) == 5
    error_of(client.get("/api/throughput", params={"minutes": 0}), 422)


def test_queues_lists_counts(client: TestClient, q: Queuectl) -> None:
    enqueue_all(q, {"command": "true", "queue": "mail"}, {"command": "true"})
    q.ok("queue", "rate", "mail", "100/h")
    queues = {queue["name"]: queue for queue in client.get("/api/queues").json()}
    assert set(queues) == {"default", "mail"}
    assert queues["mail"]["counts"]["pending"] == 1
    assert queues["mail"]["paused"] is False
    assert (queues["mail"]["rate"], queues["default"]["rate"]) == ("100/h", None)


# -- changing jobs ----------------------------------------------------------------------


def test_retry_a_dead_job(client: TestClient, q: Queuectl) -> None:
    q.enqueue(id="d", command="exit 1", max_retries=1)
    run_burst(q)
    response = client.post("/api/jobs/d/retry", headers=AUTH)
    assert response.status_code == 200, response.text
    assert (response.json()["state"], response.json()["attempts"]) == ("pending", 0)
    assert "pending" in error_of(client.post("/api/jobs/d/retry", headers=AUTH), 409)
    error_of(client.post("/api/jobs/missing/retry", headers=AUTH), 404)


def test_cancel_a_pending_job(client: TestClient, q: Queuectl) -> None:
    q.enqueue(id="p", command="true")
    response = client.post("/api/jobs/p/cancel", headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "cancelled"
    assert q.state("p") == "cancelled"
    error_of(client.post("/api/jobs/p/cancel", headers=AUTH), 409)
    error_of(client.post("/api/jobs/missing/cancel", headers=AUTH), 404)
    # A cancelled job can be retried from the dashboard too.
    assert client.post("/api/jobs/p/retry", headers=AUTH).json()["state"] == "pending"


def test_retry_all_and_purge_the_dlq(client: TestClient, q: Queuectl) -> None:
    enqueue_all(
        q,
        {"id": "d1", "command": "exit 1", "max_retries": 1},
        {"id": "d2", "command": "exit 1", "max_retries": 1, "queue": "other"},
        {"id": "ok", "command": "true"},
    )
    run_burst(q)
    assert client.post("/api/dlq/retry-all", headers=AUTH).json() == {"retried": 2}
    assert {q.state("d1"), q.state("d2")} == {"pending"}
    run_burst(q)
    other = client.post("/api/dlq/purge", params={"queue": "other"}, headers=AUTH)
    assert other.json() == {"purged": 1}
    assert client.post("/api/dlq/purge", params={"older_than": 3600}, headers=AUTH).json() == {
        "purged": 0
    }
    assert client.post("/api/dlq/purge", headers=AUTH).json() == {"purged": 1}
    assert ids(client.get("/api/jobs").json()) == ["ok"]


# -- errors ---------------------------------------------------------------------------


def test_unknown_routes_and_methods_answer_json(client: TestClient) -> None:
    error_of(client.get("/api/nothing-here"), 404)
    error_of(client.delete("/api/jobs"), 405)


def test_an_unreachable_store_is_503(client: TestClient) -> None:
    @contextmanager
    def broken() -> Iterator[None]:
        raise StoreUnavailable("cannot connect to the store: it is on fire")
        yield

    client.app.state.pool.service = broken  # type: ignore[attr-defined]
    assert "on fire" in error_of(client.get("/api/status"), 503)
    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.json() == {"ok": False, "error": "cannot connect to the store: it is on fire"}


def test_openapi_describes_the_api(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in ("/api/status", "/api/jobs", "/api/jobs/{job_id}", "/api/throughput"):
        assert "get" in paths[path], path
    for route in ("/api/jobs/{job_id}/retry", "/api/jobs/{job_id}/cancel", "/api/dlq/purge"):
        assert paths[route]["post"]["security"], route
    body = paths["/api/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["command"]
    assert json.dumps(schema)  # serializable as it is served
