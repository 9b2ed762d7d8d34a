"""Webhooks posted by real workers to a real local HTTP server (issue 16, item 1): signed,
retried with backoff when the receiver is down, slow or failing, recorded when it never
answers, and never changing a job's outcome."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.conftest import Queuectl, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.in_process]


@dataclass
class Receiver:
    """What the server got, and how it answers: `statuses` in turn (the last one for
    every request after), each after `delay` seconds."""

    url: str
    statuses: list[int] = field(default_factory=lambda: [200])
    delay: float = 0.0
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@contextlib.contextmanager
def receiver(**options: Any) -> Iterator[Receiver]:
    got = Receiver(url="", **options)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.requests.append((dict(self.headers.items()), body))
            time.sleep(got.delay)
            status = got.statuses[min(len(got.requests), len(got.statuses)) - 1]
            with contextlib.suppress(OSError):  # a client that timed out has gone
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    got.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield got
    finally:
        server.shutdown()
        server.server_close()


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def delivery(q: Queuectl, job_id: str, status: str, timeout: float = 40) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        webhooks = [d for d in q.job(job_id)["hook_deliveries"] if d["channel"] == "webhook"]
        return webhooks[0] if webhooks and webhooks[0]["status"] == status else None

    return wait_until(found, timeout=timeout, interval=0.2, message=f"a {status} webhook")  # type: ignore[no-any-return]


def test_a_webhook_posts_the_facts_signed_with_the_secret(q: Queuectl) -> None:
    with receiver() as server:
        q.config("webhook-url", server.url)
        assert q.ok("config", "set", "webhook-secret", "s3cret") == "webhook-secret = ********\n"
        job_id = q.ok("add", "--queue", "mail", "--", "echo sent").strip()
        q.start_workers()
        delivery(q, job_id, "delivered")
        ((headers, body),) = server.requests
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Queuectl-Signature"] == f"sha256={expected}"
    assert headers["X-Queuectl-Event"] == "complete"
    assert headers["Content-Type"] == "application/json"
    facts = json.loads(body)
    assert {key: facts[key] for key in ("event", "job_id", "state", "exit_code")} == {
        "event": "complete",
        "job_id": job_id,
        "state": "completed",
        "exit_code": 0,
    }
    assert (facts["attempt"], facts["queue"], facts["command"]) == (1, "mail", "echo sent")
    assert facts["output"] == "sent\n"
    assert "s3cret" not in q.ok("config", "list") + q.ok("config", "get", "webhook-secret")


def test_a_webhook_answering_500_is_retried_until_it_succeeds(q: Queuectl) -> None:
    with receiver(statuses=[500, 200]) as server:
        q.config("webhook-url", server.url)
        job_id = q.ok("add", "--", "true").strip()
        q.start_workers()
        done = delivery(q, job_id, "delivered")
        assert len(server.requests) == 2
    assert done["tries"] == 2
    bodies = {body for _, body in server.requests}
    assert len(bodies) == 1  # the same delivery, byte for byte


def test_webhooks_failing_down_or_slow_are_tried_three_times_then_recorded(q: Queuectl) -> None:
    """One receiver answering 500, one down, one slower than hook-timeout: each delivery is
    tried three times and recorded as failed, the job's outcome stands, and a job that
    comes due meanwhile runs on time (deliveries hold up no job)."""
    with receiver(statuses=[500]) as failing, receiver(delay=5.0) as slow:
        q.config("hook-timeout", "0.5")
        q.ok("queue", "webhook", "failing", failing.url)
        q.ok("queue", "webhook", "down", f"http://127.0.0.1:{unused_port()}/down")
        q.ok("queue", "webhook", "slow", slow.url)
        answered = q.ok("add", "--queue", "failing", "--", "true").strip()
        unreached = q.ok("add", "--queue", "down", "--max-retries", "0", "--", "exit 4").strip()
        timed_out = q.ok("add", "--queue", "slow", "--", "true").strip()
        later = q.ok("add", "--delay", "1s", "--", "true").strip()
        q.start_workers()
        q.wait_for_state(later, "completed", timeout=15)
        failed = {
            job: delivery(q, job, "failed", timeout=60) for job in (answered, unreached, timed_out)
        }
        assert len(failing.requests) == 3
    assert (failed[answered]["tries"], failed[answered]["error"]) == (
        3,
        "webhook answered HTTP 500",
    )
    assert failed[unreached]["tries"] == 3
    assert "unreachable" in failed[unreached]["error"]
    assert failed[timed_out]["tries"] == 3
    assert "timed out" in failed[timed_out]["error"]
    assert (q.state(answered), q.state(unreached), q.state(timed_out)) == (
        "completed",
        "dead",
        "completed",
    )
    assert "webhook" in q.ok("show", unreached).split("Hooks:")[1]
    checks = {c["name"]: c for c in json.loads(q.run("doctor", "--json").stdout)["checks"]}
    assert checks["hooks"]["status"] == "warn"


def test_a_queue_webhook_gets_only_its_queues_events(q: Queuectl) -> None:
    with receiver() as mine, receiver() as everyone:
        q.config("webhook-url", everyone.url)
        q.ok("queue", "webhook", "mail", mine.url)
        assert q.ok("queue", "webhook", "mail") == f"Queue mail: webhook {mine.url}.\n"
        mail = q.ok("add", "--queue", "mail", "--", "true").strip()
        other = q.ok("add", "--", "true").strip()
        q.start_workers()
        delivery(q, mail, "delivered")
        delivery(q, other, "delivered")
        assert [json.loads(body)["job_id"] for _, body in mine.requests] == [mail]
        assert [json.loads(body)["job_id"] for _, body in everyone.requests] == [other]
        q.ok("queue", "webhook", "mail", "none")
        assert "no webhook of its own" in q.ok("queue", "webhook", "mail")
        again = q.ok("add", "--queue", "mail", "--", "true").strip()
        delivery(q, again, "delivered")
        assert [json.loads(body)["job_id"] for _, body in everyone.requests] == [other, again]
