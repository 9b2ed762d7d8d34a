"""The shapes of the API's JSON, for /openapi.json.

Handlers build their JSON with the same `to_json()` as `--json` on the command line; these
models only describe it (and the API tests check that the two agree).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from queuectl.core.fields import (
    INT32_MAX,
    INT32_MIN,
    MAX_DEDUPE_KEY_LENGTH,
    MAX_EXIT_CODE,
    MAX_RETRIES_LIMIT,
    QUEUE_PATTERN,
)
from queuectl.core.ids import JOB_ID_PATTERN
from queuectl.core.models import JobState

Timestamp = str  # RFC 3339 in UTC with milliseconds and a trailing Z


class ErrorBody(BaseModel):
    error: str = Field(description="what is wrong, one line")


class Attempt(BaseModel):
    attempt: int
    worker_id: str | None
    started_at: Timestamp
    finished_at: Timestamp | None
    exit_code: int | None
    error: str | None
    outcome: str | None = Field(
        description="ok, failed, timeout, killed, lost or spawn-error; null while it runs"
    )
    signal: str | None = Field(description="the signal that ended a killed attempt (SIGKILL)")


class JobSummary(BaseModel):
    """A job as listed: every field but `output`, which can be large."""

    id: str
    command: str
    state: JobState
    queue: str
    priority: int
    attempts: int
    max_retries: int
    timeout: float
    created_at: Timestamp
    updated_at: Timestamp
    scheduled_at: Timestamp | None
    run_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
    exit_code: int | None
    last_error: str | None
    locked_by: str | None
    locked_at: Timestamp | None
    cwd: str | None
    env: dict[str, str] | None
    retry_on_exit: list[int] = Field(description="only these exit codes are retried; []: any")
    fatal_on_exit: list[int] = Field(description="these exit codes go to the DLQ at once")
    dedupe_key: str | None = Field(
        description="no two pending, failed or processing jobs share a key"
    )
    depends_on: list[str] = Field(description="ids of jobs that must complete before it runs")
    hooks: dict[str, str] | None = Field(
        default=None, description="the job's own hook commands: on_complete, on_dead, ..."
    )


class Job(JobSummary):
    output: str = Field(description="output of the latest attempt (live while it runs)")


class HookDelivery(BaseModel):
    event: str = Field(description="complete, fail, dead or cancel")
    channel: str = Field(description="hook (a shell command) or webhook (a URL)")
    target: str
    status: str = Field(description="pending, delivered or failed")
    tries: int
    created_at: Timestamp
    finished_at: Timestamp | None
    error: str | None


class JobDetail(Job):
    history: list[Attempt]
    hook_deliveries: list[HookDelivery] = Field(default_factory=list)


class JobPage(BaseModel):
    jobs: list[JobSummary] = Field(description="newest first")
    offset: int
    limit: int
    next_offset: int | None = Field(description="offset of the next (older) page; null: none")
    now: Timestamp


class Worker(BaseModel):
    id: str
    host: str
    pid: int
    status: str
    started_at: Timestamp
    last_heartbeat: Timestamp
    current_job_id: str | None
    queues: list[str] | None


class Status(BaseModel):
    jobs: dict[str, int] = Field(description="`total` and a count per state")
    workers: list[Worker] = Field(description="the active workers")
    now: Timestamp


class Minute(BaseModel):
    start: Timestamp
    completed: int
    failed: int


class Throughput(BaseModel):
    minutes: list[Minute] = Field(description="finished attempts per minute, oldest first")


class Queue(BaseModel):
    name: str
    paused: bool
    max_running: int | None
    rate: str | None = Field(description="rate limit: at most N job starts per s, m or h")
    counts: dict[str, int]


class Retried(BaseModel):
    retried: int


class Purged(BaseModel):
    purged: int


class Health(BaseModel):
    ok: bool
    error: str | None = None


_EXIT_CODES: dict[str, Any] = {
    "type": ["array", "null"],
    "items": {"type": "integer", "minimum": 0, "maximum": MAX_EXIT_CODE},
}

# The body of POST /api/jobs, as JSON Schema: the handler validates it exactly as
# `queuectl enqueue` does, so that the messages are the same.
ENQUEUE_BODY: dict[str, Any] = {
    "description": "the same JSON object as `queuectl enqueue` takes",
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["command"],
                "additionalProperties": False,
                "properties": {
                    "command": {"type": "string", "minLength": 1},
                    "id": {"type": "string", "pattern": f"^{JOB_ID_PATTERN}$"},
                    "queue": {"type": "string", "pattern": f"^{QUEUE_PATTERN}$"},
                    "priority": {"type": "integer", "minimum": INT32_MIN, "maximum": INT32_MAX},
                    "max_retries": {"type": "integer", "minimum": 0, "maximum": MAX_RETRIES_LIMIT},
                    "timeout": {"type": "number", "exclusiveMinimum": 0},
                    "scheduled_at": {"type": ["string", "null"], "description": "ISO 8601"},
                    "cwd": {"type": ["string", "null"]},
                    "env": {
                        "type": ["object", "null"],
                        "additionalProperties": {"type": "string"},
                    },
                    "retry_on_exit": _EXIT_CODES,
                    "fatal_on_exit": _EXIT_CODES,
                    "dedupe_key": {
                        "type": ["string", "null"],
                        "minLength": 1,
                        "maxLength": MAX_DEDUPE_KEY_LENGTH,
                    },
                    "depends_on": {
                        "type": ["array", "null"],
                        "items": {"type": "string", "pattern": f"^{JOB_ID_PATTERN}$"},
                    },
                    **{
                        key: {"type": ["string", "null"], "minLength": 1}
                        for key in ("on_complete", "on_fail", "on_dead", "on_cancel")
                    },
                    # A job in the stored record's shape: accepted as a new job says it.
                    "state": {"type": "string", "enum": ["pending"]},
                    "attempts": {"type": "integer", "minimum": 0, "maximum": 0},
                    "created_at": {"description": "ignored: queuectl sets it"},
                    "updated_at": {"description": "ignored: queuectl sets it"},
                },
            },
            "example": {"command": "make report", "queue": "default", "max_retries": 3},
        }
    },
}
