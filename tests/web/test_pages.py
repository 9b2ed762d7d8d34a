"""The HTML pages, the token's way to the browser, and the protective headers."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from queuectl.web.app import create_app
from queuectl.web.tokens import TOKEN_COOKIE
from tests.conftest import Queuectl
from tests.web.conftest import AUTH, TOKEN, run_burst

pytestmark = pytest.mark.in_process

INJECTION = "<script>alert(1)</script><img src=x onerror=alert(2)>"
TOKEN_META = re.compile(r'<meta name="queuectl-token" content="([^"]*)">')


@pytest.fixture
def site(q_sqlite: Queuectl) -> Iterator[TestClient]:
    """The app over SQLite only: the pages do not depend on the backend."""
    with TestClient(create_app(q_sqlite.target, TOKEN)) as test_client:
        yield test_client


def test_job_page_escapes_command_and_output(site: TestClient, q_sqlite: Queuectl) -> None:
    command = f"printf '%s' '{INJECTION}'; exit 1"
    q_sqlite.enqueue(id="xss", command=command, max_retries=1)
    run_burst(q_sqlite)
    page = site.get("/jobs/xss")
    assert page.status_code == 200
    html = page.text
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in html
    assert html.count("&lt;script&gt;alert(1)") == 2  # in the command and in the output
    assert 'data-field="state">dead<' in html


def test_job_page_shows_the_policy_and_each_attempts_outcome(
    site: TestClient, q_sqlite: Queuectl
) -> None:
    q_sqlite.enqueue(
        id="fatal", command="exit 2", fatal_on_exit=[2, 126], dedupe_key="nightly", max_retries=3
    )
    q_sqlite.enqueue(id="killed", command="kill -KILL $$", max_retries=1)
    run_burst(q_sqlite)
    fatal = site.get("/jobs/fatal").text
    assert re.search(r'data-field="fatal_on_exit">\[2, 126\]<', fatal)
    assert 'data-field="dedupe_key">nightly<' in fatal
    assert "<td>failed</td>" in fatal
    assert "exit code 2 is fatal (fatal_on_exit)" in fatal
    assert "<td>killed (SIGKILL)</td>" in site.get("/jobs/killed").text


def test_every_page_forbids_inline_scripts(site: TestClient) -> None:
    for path in ("/", "/api/status", "/static/dashboard.js"):
        headers = site.get(path).headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"


def test_the_page_is_read_only_without_the_token(site: TestClient) -> None:
    page = site.get("/")
    assert page.status_code == 200
    assert TOKEN_META.search(page.text) is None
    assert "Read-only" in page.text


def test_the_printed_address_signs_the_browser_in(site: TestClient) -> None:
    wrong = site.get("/", params={"token": "guess"}, follow_redirects=False)
    assert wrong.status_code == 401
    assert TOKEN_META.search(wrong.text) is None
    signed = site.get("/", params={"token": TOKEN, "state": "dead"}, follow_redirects=False)
    assert signed.status_code == 303
    assert signed.headers["location"] == "/?state=dead"  # the token leaves the address bar
    cookie = signed.headers["set-cookie"]
    assert cookie.startswith(f"{TOKEN_COOKIE}={TOKEN};")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    page = site.get("/")
    match = TOKEN_META.search(page.text)
    assert match is not None
    assert match.group(1) == TOKEN
    assert "Read-only" not in page.text


def test_the_cookie_alone_changes_nothing(site: TestClient) -> None:
    """Only the Authorization header authorizes a change, so no other site can make the
    browser change the queue by sending the cookie along."""
    site.get("/", params={"token": TOKEN})
    response = site.post("/api/jobs", json={"command": "true"})
    assert response.status_code == 401
    assert site.post("/api/jobs", json={"command": "true"}, headers=AUTH).status_code == 201


def test_unknown_job_page_is_a_404_page(site: TestClient) -> None:
    page = site.get("/jobs/<b>nope")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "&lt;b&gt;nope" in page.text
    assert "<b>nope" not in page.text


def test_loopback_server_answers_only_to_loopback_names(q_sqlite: Queuectl) -> None:
    """A site whose name was re-pointed at 127.0.0.1 (DNS rebinding) gets nothing."""
    app = create_app(q_sqlite.target, TOKEN, allowed_hosts=("localhost", "127.0.0.1", "[::1]"))
    with TestClient(app, base_url="http://attacker.example:8765") as client:
        response = client.get("/api/status")
        assert response.status_code == 421
        assert response.json() == {"error": "unknown Host header"}
    for base in ("http://127.0.0.1:8765", "http://localhost", "http://[::1]:8765"):
        with TestClient(app, base_url=base) as client:
            assert client.get("/api/status").status_code == 200, base


def test_static_files_and_job_page_links(site: TestClient, q_sqlite: Queuectl) -> None:
    assert site.get("/static/dashboard.js").status_code == 200
    assert site.get("/static/dashboard.css").status_code == 200
    q_sqlite.enqueue(id="a.b:c@d-e", command="true")
    assert site.get("/jobs/a.b:c@d-e").status_code == 200
