"""`queuectl dashboard` as a user runs it: the real server in a subprocess."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from queuectl.cli import main
from tests.conftest import Queuectl, assert_error
from tests.web.conftest import start_dashboard

pytestmark = pytest.mark.in_process


def test_dashboard_serves_the_api_with_the_printed_token(q: Queuectl) -> None:
    server = start_dashboard(q)
    assert server.base.startswith("http://127.0.0.1:")
    assert server.sign_in is not None
    token = server.sign_in.split("?token=")[1]
    assert any(line.startswith(f"API token:  {token}") for line in server.lines)
    with httpx.Client(base_url=server.base, timeout=10) as http:
        assert http.get("healthz").json() == {"ok": True}
        assert http.post("api/jobs", json={"command": "true"}).status_code == 401
        auth = {"Authorization": f"Bearer {token}"}
        created = http.post("api/jobs", json={"id": "j", "command": "true"}, headers=auth)
        assert created.status_code == 201
        # A name that is not loopback is refused (DNS rebinding).
        assert http.get("api/status", headers={"Host": "evil.example"}).status_code == 421
    assert q.state("j") == "pending"
    assert server.stop(signal.SIGINT) == 0


def test_a_given_token_is_not_printed(q: Queuectl) -> None:
    q.env["QUEUECTL_TOKEN"] = "from-the-environment"
    server = start_dashboard(q)
    assert server.sign_in is None
    assert not any("from-the-environment" in line for line in server.lines)
    with httpx.Client(base_url=server.base, timeout=10) as http:
        auth = {"Authorization": "Bearer from-the-environment"}
        assert http.post("api/jobs", json={"command": "true"}, headers=auth).status_code == 201
    server.stop()


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_a_public_address_needs_a_token(q_sqlite: Queuectl, host: str) -> None:
    q_sqlite.env.pop("QUEUECTL_TOKEN", None)
    message = assert_error(q_sqlite.run("dashboard", "--host", host, "--port", "0"), 2)
    assert "without a token" in message


def test_a_public_address_with_a_token_serves(q_sqlite: Queuectl) -> None:
    server = start_dashboard(q_sqlite, "--host", "0.0.0.0", "--token", "a-long-secret")
    assert server.base.startswith("http://0.0.0.0:")
    port = server.base.rsplit(":", 1)[1].rstrip("/")
    with httpx.Client(base_url=f"http://127.0.0.1:{port}/", timeout=10) as http:
        # Any Host name is served: on a network the server cannot know its names.
        assert http.get("healthz", headers={"Host": "queue.example:80"}).status_code == 200
        auth = {"Authorization": "Bearer a-long-secret"}
        assert http.post("api/jobs", json={"command": "true"}, headers=auth).status_code == 201
    assert server.stop() == 0


def test_a_taken_port_is_an_error(q_sqlite: Queuectl) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        message = assert_error(q_sqlite.run("dashboard", "--port", port), 1)
    assert f"cannot listen on 127.0.0.1:{port}" in message


def test_an_unreachable_store_is_an_error(q_sqlite: Queuectl, tmp_path: Path) -> None:
    (tmp_path / "not-a-db").write_text("this is not SQLite\n" * 100)
    result = q_sqlite.run("--db", str(tmp_path / "not-a-db"), "dashboard", "--port", "0")
    assert "store" in assert_error(result, 1)


def test_missing_extra_names_the_pip_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if it were not installed
    assert main(["--db", str(tmp_path / "q.db"), "dashboard", "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "pip install 'queuectl[dashboard]'" in err
    assert len(err.splitlines()) == 1


def test_other_commands_do_not_import_the_web_stack(q_sqlite: Queuectl) -> None:
    code = (
        "import sys; from queuectl.cli import main; main(['status']); "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette', 'jinja2', "
        "'prometheus_client', 'queuectl.web') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=q_sqlite.env, capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    assert result.stdout.strip().splitlines()[-1] == "[]"
