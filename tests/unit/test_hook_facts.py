"""What hooks and webhooks are told about a job: the environment, the output tail, the
signed body (issue 16, item 1)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from queuectl.core.errors import InvalidConfig, InvalidJobSpec
from queuectl.core.settings import SECRET_MASK, Settings, listed_texts, listed_values, normalize
from queuectl.core.spec import job_fields
from queuectl.store.records import HookEvent
from queuectl.worker.hook_facts import (
    OUTPUT_BYTES,
    OUTPUT_LINES,
    hook_environment,
    output_tail,
    signature,
    webhook_body,
    webhook_headers,
)

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def event(**changes: object) -> HookEvent:
    fields: dict[str, object] = {
        "id": 7,
        "job_id": "j1",
        "event": "dead",
        "channel": "hook",
        "target": "notify-send done",
        "state": "dead",
        "exit_code": 3,
        "attempt": 2,
        "queue": "mail",
        "command": "echo $(rm -rf /) '; reboot",
        "last_error": "exited with code 3",
        "output": "a\nb\n",
        "created_at": AT,
        "status": "pending",
        "tries": 0,
        "next_attempt_at": AT,
        "finished_at": None,
        "error": None,
    }
    fields.update(changes)
    return HookEvent(**fields)  # type: ignore[arg-type]


def test_the_environment_holds_every_fact_as_text() -> None:
    env = hook_environment(event(), "/tmp/out", {"PATH": "/bin", "QUEUECTL_STATE": "stale"})
    assert env == {
        "PATH": "/bin",
        "QUEUECTL_EVENT": "dead",
        "QUEUECTL_JOB_ID": "j1",
        "QUEUECTL_STATE": "dead",
        "QUEUECTL_EXIT_CODE": "3",
        "QUEUECTL_ATTEMPT": "2",
        "QUEUECTL_QUEUE": "mail",
        "QUEUECTL_COMMAND": "echo $(rm -rf /) '; reboot",
        "QUEUECTL_LAST_ERROR": "exited with code 3",
        "QUEUECTL_OUTPUT_FILE": "/tmp/out",
    }


def test_missing_facts_are_empty_variables() -> None:
    env = hook_environment(event(exit_code=None, last_error=None), "/o", {})
    assert (env["QUEUECTL_EXIT_CODE"], env["QUEUECTL_LAST_ERROR"]) == ("", "")


def test_the_output_tail_keeps_the_last_lines_and_bytes() -> None:
    lines = "".join(f"line {n}\n" for n in range(200))
    assert output_tail(lines).splitlines() == [f"line {n}" for n in range(200 - OUTPUT_LINES, 200)]
    long = "x" * (OUTPUT_BYTES * 3)
    assert output_tail(long) == "x" * OUTPUT_BYTES
    wide = "é" * OUTPUT_BYTES  # two bytes each: the cut may not leave half a character
    assert len(output_tail(wide).encode()) <= OUTPUT_BYTES
    assert set(output_tail(wide)) == {"é"}


def test_the_signature_is_the_hmac_of_the_exact_body() -> None:
    body = webhook_body(event())
    headers = webhook_headers(event(), body, "k3y")
    expected = hmac.new(b"k3y", body, hashlib.sha256).hexdigest()
    assert headers["X-Queuectl-Signature"] == f"sha256={expected}" == signature("k3y", body)
    assert headers["X-Queuectl-Event"] == "dead"
    assert headers["X-Queuectl-Delivery"] == "7"
    assert "X-Queuectl-Signature" not in webhook_headers(event(), body, "")
    assert signature("other", body) != headers["X-Queuectl-Signature"]


def test_the_body_holds_the_facts() -> None:
    facts = json.loads(webhook_body(event()))
    assert facts == {
        "event": "dead",
        "delivery": 7,
        "job_id": "j1",
        "state": "dead",
        "exit_code": 3,
        "attempt": 2,
        "queue": "mail",
        "command": "echo $(rm -rf /) '; reboot",
        "last_error": "exited with code 3",
        "output": "a\nb\n",
        "at": "2026-01-02T03:04:05.000Z",
    }


def test_the_webhook_secret_is_never_listed() -> None:
    secret = "hunter22"
    settings = Settings(webhook_secret=secret, webhook_url="https://example.com/h")
    assert dict(listed_texts(settings))["webhook-secret"] == SECRET_MASK
    assert listed_values(settings)["webhook-secret"] == SECRET_MASK
    assert dict(listed_texts(Settings()))["webhook-secret"] == "none"
    assert "hunter22" not in repr(listed_texts(settings)) + repr(listed_values(settings))


@pytest.mark.parametrize("value", ["ftp://x", "example.com", "http://a b"])
def test_a_webhook_url_must_be_http(value: str) -> None:
    with pytest.raises(InvalidConfig):
        normalize("webhook-url", value)


def test_none_or_nothing_clears_a_hook_setting() -> None:
    for value in ("none", "", " "):
        assert normalize("on-dead", value) == "none"
        assert normalize("webhook-url", value) == "none"
        assert Settings.from_stored({"on-dead": normalize("on-dead", value)}).on_dead == ""
    assert normalize("on-dead", "notify-send x") == "notify-send x"
    assert not Settings.from_stored({"webhook-url": "none", "on-fail": "none"}).hooks_configured


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"command": "true", "on_dead": 1}, "on_dead must be a string"),
        ({"command": "true", "on_fail": ["x"]}, "on_fail must be a string"),
        ({"command": "true", "on_complete": "  "}, "on_complete must not be empty"),
        ({"command": "true", "on_cancel": "a\0b"}, "on_cancel must not contain a NUL"),
    ],
)
def test_bad_job_hooks_are_refused(data: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidJobSpec, match=message):
        job_fields(data, Settings())


def test_job_hooks_are_kept_together_and_null_is_unset() -> None:
    fields = job_fields({"command": "true", "on_dead": "x", "on_fail": None}, Settings())
    assert fields["hooks"] == {"on_dead": "x"}
    assert job_fields({"command": "true"}, Settings())["hooks"] is None
