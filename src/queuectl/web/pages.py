"""The HTML pages: the dashboard and a job's page, rendered with Jinja2 (autoescaped).

The dashboard's live parts are drawn by static/dashboard.js from the JSON API; the job
page is rendered here in full and the script keeps it current.
"""

from __future__ import annotations

import hmac
import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from queuectl import __version__
from queuectl.core.models import JobState
from queuectl.core.redact import redact
from queuectl.store import default_target
from queuectl.web.api import borrow, detail
from queuectl.web.tokens import has_token_cookie, token_cookie

TEMPLATES = Path(__file__).parent / "templates"
STATE_LABELS = {
    JobState.PENDING: "Pending",
    JobState.PROCESSING: "Processing",
    JobState.COMPLETED: "Completed",
    JobState.FAILED: "Failed",
    JobState.DEAD: "Dead (DLQ)",
    JobState.CANCELLED: "Cancelled",
}
# (field of the job JSON, label) in the order the job page lists them.
JOB_FIELDS = (
    ("queue", "Queue"),
    ("priority", "Priority"),
    ("attempts_of", "Attempts"),
    ("timeout", "Timeout (s)"),
    ("created_at", "Created"),
    ("updated_at", "Updated"),
    ("scheduled_at", "Scheduled"),
    ("run_at", "Run at"),
    ("started_at", "Started"),
    ("finished_at", "Finished"),
    ("exit_code", "Exit code"),
    ("last_error", "Last error"),
    ("locked_by", "Locked by"),
    ("cwd", "Working directory"),
    ("env", "Environment"),
    ("retry_on_exit", "Retry on exit"),
    ("fatal_on_exit", "Fatal on exit"),
    ("dedupe_key", "Dedupe key"),
)

router = APIRouter(include_in_schema=False)


def show(value: Any) -> str:
    """A JSON value as the page shows it; dashboard.js's show() does the same."""
    if value is None:
        return "\u2013"  # an en dash
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def seconds_between(start: str, end: str | None) -> str:
    """A duration from two API timestamps, as dashboard.js prints it."""
    if end is None:
        return "running"
    from datetime import datetime

    def parse(text: str) -> datetime:
        return datetime.fromisoformat(text.removesuffix("Z") + "+00:00")

    return f"{(parse(end) - parse(start)).total_seconds():.2f} s"


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,  # every value is escaped: commands and output are user data
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["show"] = show
    env.globals["seconds_between"] = seconds_between
    return env


def describe_store(target: str | None) -> str:
    """The store for the page header, with any password masked."""
    target = target or default_target()
    return redact(target, target)


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    token: str = request.app.state.token
    html = (
        environment()
        .get_template(name)
        .render(
            # The token reaches a page only for a browser that has shown it once (the
            # cookie set by /?token=...): anyone else who can load the page sees it
            # read-only, and never learns the token from it.
            token=token if has_token_cookie(request, token) else None,
            version=__version__,
            store=describe_store(request.app.state.target),
            states=[state.value for state in JobState],
            labels={state.value: label for state, label in STATE_LABELS.items()},
            **context,
        )
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", status=status, status_code=status, message=message)


@router.get("/")
def index(request: Request, token: str | None = None) -> Response:
    if token is not None:
        return sign_in(request, token)
    return render(request, "index.html", notice=None)


def sign_in(request: Request, token: str) -> Response:
    """`/?token=T`, the address `queuectl dashboard` prints: remember the token in an
    HttpOnly cookie and drop it from the address bar (and so from the history)."""
    if not hmac.compare_digest(token, request.app.state.token):
        return render(request, "index.html", status=401, notice="That token is not right.")
    rest = [(key, value) for key, value in request.query_params.multi_items() if key != "token"]
    response = RedirectResponse("/" + (f"?{urlencode(rest)}" if rest else ""), status_code=303)
    response.set_cookie(token_cookie(request), token, httponly=True, samesite="strict", path="/")
    return response


@router.get("/jobs/{job_id}")
def job_page(request: Request, job_id: str) -> Response:
    with borrow(request) as service:
        job = detail(service, service.get_job(job_id))
    job["attempts_of"] = f"{job['attempts']} of {job['max_retries']}"
    return render(
        request,
        "job.html",
        job=job,
        fields=JOB_FIELDS,
        retryable=(JobState.DEAD.value, JobState.CANCELLED.value),
        cancellable=(JobState.PENDING.value, JobState.FAILED.value, JobState.PROCESSING.value),
    )
