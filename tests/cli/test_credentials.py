"""A password in the store's target is never printed (SPEC 1): not in errors, `doctor`,
`store migrate`, nor the dashboard's start-up, whichever of libpq's forms holds it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import pgtools
from tests.conftest import Queuectl, assert_error

pytestmark = pytest.mark.in_process

SECRET = "sekret-0042"
# Port 1: nothing listens, so each command fails at connecting, and says where.
UNREACHABLE = [
    f"postgresql://someone:{SECRET}@127.0.0.1:1/queue",
    f"postgresql://someone@127.0.0.1:1/queue?password={SECRET}",
    f"postgresql://127.0.0.1:1/queue?user=someone&password={SECRET}&connect_timeout=5",
    # A driver's message that quotes the password alone (a bad %-escape in it).
    f"postgresql://someone:{SECRET}%zz@127.0.0.1:1/queue",
]


def key_value_target(tmp_path: Path) -> str:
    """A key=value string, which names a SQLite file here: under a plain file, so that
    it cannot be created and the error names it."""
    (tmp_path / "plain-file").write_text("")
    return f"{tmp_path}/plain-file/host=db port=1 password={SECRET}"


@pytest.mark.parametrize("target", UNREACHABLE)
@pytest.mark.parametrize(
    "args", [["status"], ["enqueue", '{"command": "true"}'], ["list"], ["dashboard"]]
)
def test_errors_do_not_show_the_password(q_sqlite: Queuectl, target: str, args: list[str]) -> None:
    message = assert_error(q_sqlite.run("--db", target, *args), 1)
    assert "127.0.0.1:1/queue" in message  # the target is named...
    assert SECRET not in message  # ...without its password
    assert "***" in message


@pytest.mark.parametrize("target", UNREACHABLE)
def test_the_environment_variable_is_redacted_alike(q_sqlite: Queuectl, target: str) -> None:
    q_sqlite.env["QUEUECTL_DB"] = target
    message = assert_error(q_sqlite.run("status"), 1)
    assert SECRET not in message
    assert "***" in message


def test_a_key_value_target_in_an_error(q_sqlite: Queuectl, tmp_path: Path) -> None:
    message = assert_error(q_sqlite.run("--db", key_value_target(tmp_path), "status"), 1)
    assert "host=db port=1 password=***" in message
    assert SECRET not in message


@pytest.mark.parametrize("target", UNREACHABLE)
def test_doctor_does_not_show_the_password(q_sqlite: Queuectl, target: str) -> None:
    for args in (["doctor"], ["doctor", "--json"]):
        result = q_sqlite.run("--db", target, *args)
        assert result.returncode == 1
        assert "127.0.0.1:1/queue" in result.stdout
        assert SECRET not in result.stdout + result.stderr


def test_doctor_on_a_key_value_target(q_sqlite: Queuectl, tmp_path: Path) -> None:
    result = q_sqlite.run("--db", key_value_target(tmp_path), "doctor")
    assert result.returncode == 1
    assert "host=db port=1 password=***" in result.stdout
    assert SECRET not in result.stdout + result.stderr


def test_a_key_value_target_is_postgresql_never_a_file_named_after_it(
    q_sqlite: Queuectl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A libpq key=value string names a PostgreSQL server: a write to an unreachable one
    fails with the password masked, and no file named after the string appears."""
    monkeypatch.chdir(tmp_path)
    target = f"host=127.0.0.1 port=1 password={SECRET}"
    result = q_sqlite.run("--db", target, "enqueue", '{"command": "true"}')
    assert result.returncode == 1
    assert "PostgreSQL at host=127.0.0.1 port=1 password=***" in result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert not [path for path in tmp_path.iterdir() if SECRET in path.name]


@pytest.mark.postgres
def test_store_migrate_names_the_new_store_without_its_password(q_sqlite: Queuectl) -> None:
    q_sqlite.enqueue(id="moved", command="true")
    with pgtools.fresh_database() as url:
        # The server trusts local users: the password is given but not needed.
        server, _, database = url.rpartition("/")
        target = f"{server}/{database}?password={SECRET}"
        result = q_sqlite.run("store", "migrate", "--to", target)
        assert result.returncode == 0, result.stderr
        assert f"export QUEUECTL_DB='{server}/{database}?password=***'" in result.stdout
        assert SECRET not in result.stdout + result.stderr
