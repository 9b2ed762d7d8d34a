"""What a hook or webhook is told about a job: the facts of one outbox row as environment
variables (for a hook command) and as a signed JSON body (for a webhook).

The facts never enter a hook's shell text: the command is the configured one, unchanged,
and the job's id, command, error and output reach it only as variables and a file, so no
job's content can inject commands into it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from queuectl.core.clock import format_timestamp
from queuectl.core.run_env import ATTEMPT_VARIABLE, JOB_ID_VARIABLE
from queuectl.store.records import HookEvent

OUTPUT_LINES = 50  # the last lines of output a hook or webhook gets
OUTPUT_BYTES = 8192  # and at most this many bytes of them
SIGNATURE_HEADER = "X-Queuectl-Signature"
EVENT_HEADER = "X-Queuectl-Event"
DELIVERY_HEADER = "X-Queuectl-Delivery"  # the outbox row's id: the same on a redelivery


def output_tail(output: str) -> str:
    """The last OUTPUT_LINES lines of `output`, cut to the last OUTPUT_BYTES bytes."""
    lines = output.splitlines(keepends=True)[-OUTPUT_LINES:]
    tail = "".join(lines).encode("utf-8", "replace")[-OUTPUT_BYTES:]
    return tail.decode("utf-8", "ignore")  # a character cut in two at the start goes


def facts(event: HookEvent) -> dict[str, object]:
    """The facts of an event, as the webhook's JSON body holds them."""
    return {
        "event": event.event,
        "delivery": event.id,
        "job_id": event.job_id,
        "state": event.state,
        "exit_code": event.exit_code,
        "attempt": event.attempt,
        "queue": event.queue,
        "command": event.command,
        "last_error": event.last_error,
        "output": output_tail(event.output),
        "at": format_timestamp(event.created_at),
    }


def hook_environment(event: HookEvent, output_file: str, base: Mapping[str, str]) -> dict[str, str]:
    """`base` (the worker's environment) with the facts as QUEUECTL_* variables; the
    output's last lines are in the file `output_file` names."""

    def text(value: object) -> str:
        return "" if value is None else str(value).replace("\0", "")

    env = dict(base)
    env.update(
        {
            "QUEUECTL_EVENT": event.event,
            JOB_ID_VARIABLE: event.job_id,
            "QUEUECTL_STATE": event.state,
            "QUEUECTL_EXIT_CODE": text(event.exit_code),
            ATTEMPT_VARIABLE: str(event.attempt),
            "QUEUECTL_QUEUE": event.queue,
            "QUEUECTL_COMMAND": text(event.command),
            "QUEUECTL_LAST_ERROR": text(event.last_error),
            "QUEUECTL_OUTPUT_FILE": output_file,
        }
    )
    return env


def webhook_body(event: HookEvent) -> bytes:
    """The exact bytes POSTed (and signed)."""
    return json.dumps(facts(event), ensure_ascii=False, sort_keys=True).encode("utf-8")


def signature(secret: str, body: bytes) -> str:
    """The X-Queuectl-Signature value: `sha256=` and the hex HMAC-SHA256 of the body."""
    import hashlib  # here: only a worker that signs a webhook needs OpenSSL loaded
    import hmac

    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def webhook_headers(event: HookEvent, body: bytes, secret: str) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "queuectl",
        EVENT_HEADER: event.event,
        DELIVERY_HEADER: str(event.id),
    }
    if secret:
        headers[SIGNATURE_HEADER] = signature(secret, body)
    return headers
