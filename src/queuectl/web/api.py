"""The JSON API under /api/: the CLI's use cases over HTTP, with the same validation."""

from __future__ import annotations

import contextlib
import hmac
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from queuectl.core.clock import format_timestamp
from queuectl.core.errors import QueuectlError, UsageError, WrongState
from queuectl.core.fields import QUEUE_PATTERN as QUEUE_NAME_PATTERN
from queuectl.core.models import Job, JobState
from queuectl.service import QueueService
from queuectl.store.base import JobFilter
from queuectl.web import schemas

MAX_PAGE = 500  # jobs in one page of GET /api/jobs
# How deep the newest-first pages reach: each page reads offset + limit rows, so this
# bounds one request's work however many jobs the store holds (filters narrow further).
MAX_OFFSET = 10_000
MAX_BODY = 1 << 20  # bytes of a POST /api/jobs body
MAX_MINUTES = 24 * 60  # the longest throughput window

REASONS = {
    400: "malformed request (the body is not JSON, a parameter is invalid)",
    401: "the token is missing or wrong",
    404: "no job with this id",
    409: "the job is not in a state that allows this, or the id or dedupe key is taken",
    413: "the body is too large",
    422: "invalid parameters or job fields",
    503: "the store cannot be reached",
}
QUEUE_PATTERN = f"^{QUEUE_NAME_PATTERN}$"

bearer = HTTPBearer(auto_error=False, description="the token `queuectl dashboard` printed")
router = APIRouter(prefix="/api", tags=["api"])


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The documented error responses of a route: {"error": "..."} with these statuses."""
    return {code: {"model": schemas.ErrorBody, "description": REASONS[code]} for code in codes}


def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> None:
    """Every state-changing request must carry the token (no cookie: that would let any
    web page the user visits make the browser send it)."""
    token: str = request.app.state.token
    if credentials is None or not hmac.compare_digest(credentials.credentials, token):
        raise HTTPException(
            401,
            "this request needs the dashboard's token: Authorization: Bearer TOKEN",
            headers={"WWW-Authenticate": "Bearer"},
        )


@contextmanager
def borrow(request: Request) -> Iterator[QueueService]:
    with request.app.state.pool.service() as service:
        yield service


def summary(job: Job) -> dict[str, Any]:
    """A job for lists: without its output, which may be tens of kilobytes."""
    value = job.to_json()
    del value["output"]
    return value


def detail(service: QueueService, job: Job) -> dict[str, Any]:
    """A job with its history, and the output so far while it runs."""
    value = job.to_json()
    if job.state is JobState.PROCESSING:
        # If it finished meanwhile, the job's own output is the latest one.
        with contextlib.suppress(QueuectlError):
            value["output"] = service.job_output(job.id).output
    value["history"] = [attempt.to_json() for attempt in service.job_history(job.id)]
    value["hook_deliveries"] = [event.to_json() for event in service.hook_deliveries(job.id)]
    return value


States = Annotated[
    list[JobState] | None,
    Query(description="only jobs in these states (repeat the parameter for several)"),
]
QueueName = Annotated[
    str | None, Query(pattern=QUEUE_PATTERN, description="only jobs of this queue")
]


@router.get("/status", response_model=schemas.Status, responses=errors(503))
def get_status(request: Request) -> JSONResponse:
    """Counts per state and the active workers, as `queuectl status --json`."""
    with borrow(request) as service:
        service.rescue_stale()  # as `queuectl status` does: no job stays processing forever
        report = service.status()
    jobs = {"total": report.total} | {state.value: report.counts[state] for state in JobState}
    return JSONResponse(
        {
            "jobs": jobs,
            "workers": [worker.to_json() for worker in report.workers],
            "now": format_timestamp(report.now),
        }
    )


@router.get("/jobs", response_model=schemas.JobPage, responses=errors(422, 503))
def list_jobs(
    request: Request,
    state: States = None,
    queue: QueueName = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> JSONResponse:
    """Jobs newest first, one page at a time; items leave out `output`."""
    window = offset + limit + 1  # one more than the page: is there an older page?
    with borrow(request) as service:
        found = service.list_jobs(JobFilter(states=tuple(state or ()), queue=queue, limit=window))
        now = service.store.now()
    newest_first = found[::-1]
    more = len(newest_first) > offset + limit and offset + limit <= MAX_OFFSET
    return JSONResponse(
        {
            "jobs": [summary(job) for job in newest_first[offset : offset + limit]],
            "offset": offset,
            "limit": limit,
            "next_offset": offset + limit if more else None,
            "now": format_timestamp(now),
        }
    )


@router.get("/jobs/{job_id}", response_model=schemas.JobDetail, responses=errors(404, 503))
def get_job(request: Request, job_id: str) -> JSONResponse:
    """One job with its attempt history, as `queuectl show --json`."""
    with borrow(request) as service:
        return JSONResponse(detail(service, service.get_job(job_id)))


@router.post(
    "/jobs",
    status_code=201,
    response_model=schemas.Job,
    responses=errors(400, 401, 409, 413, 422, 503),
    openapi_extra={"requestBody": schemas.ENQUEUE_BODY},
    dependencies=[Depends(require_token)],
)
async def enqueue(request: Request) -> JSONResponse:
    """Add a job from the same JSON object as `queuectl enqueue`, with the same checks."""
    text = _json_text(await _read_body(request))

    def insert() -> Job:
        with borrow(request) as service:
            return service.enqueue_json(text)

    job = await run_in_threadpool(insert)
    return JSONResponse(job.to_json(), status_code=201, headers={"Location": f"/api/jobs/{job.id}"})


async def _read_body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise HTTPException(413, f"the body is larger than {MAX_BODY} bytes")
    return bytes(body)


def _json_text(body: bytes) -> str:
    """The body as JSON text: a body that is not JSON at all is malformed (400); a JSON
    value that is not a valid job is refused by the enqueue checks (422)."""
    try:
        text = body.decode("utf-8")
        json.loads(text)
    except UnicodeDecodeError:
        raise UsageError("the body must be UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"invalid JSON: {exc.msg} at column {exc.colno}") from None
    except ValueError as exc:  # e.g. a number too long to convert
        raise UsageError(f"invalid JSON: {exc}") from None
    return text


@router.post(
    "/jobs/{job_id}/retry",
    response_model=schemas.Job,
    responses=errors(401, 404, 409, 503),
    dependencies=[Depends(require_token)],
)
def retry(request: Request, job_id: str) -> JSONResponse:
    """A dead or cancelled job back to pending, attempts reset."""
    with borrow(request) as service:
        return JSONResponse(service.retry(job_id).to_json())


@router.post(
    "/jobs/{job_id}/cancel",
    response_model=schemas.Job,
    responses=errors(401, 404, 409, 503),
    dependencies=[Depends(require_token)],
)
def cancel(request: Request, job_id: str) -> JSONResponse:
    """A pending, failed or processing job becomes cancelled (a run is killed)."""
    with borrow(request) as service:
        cancelled = service.cancel([job_id])
        if not cancelled:
            state = service.get_job(job_id).state.value
            raise WrongState(f"job {job_id!r} finished ({state}) before it could be cancelled")
        return JSONResponse(cancelled[0].to_json())


@router.post(
    "/dlq/retry-all",
    response_model=schemas.Retried,
    responses=errors(401, 422, 503),
    dependencies=[Depends(require_token)],
)
def retry_all_dead(request: Request, queue: QueueName = None) -> JSONResponse:
    """Every dead job (of one queue) back to pending."""
    with borrow(request) as service:
        return JSONResponse({"retried": service.retry_all_dead(queue)})


@router.post(
    "/dlq/purge",
    response_model=schemas.Purged,
    responses=errors(401, 422, 503),
    dependencies=[Depends(require_token)],
)
def purge_dead(
    request: Request,
    queue: QueueName = None,
    older_than: Annotated[
        float | None,
        Query(ge=0, le=1e10, description="only jobs unchanged for this many seconds"),
    ] = None,
) -> JSONResponse:
    """Delete dead jobs (of one queue, unchanged for a while) with their history."""
    with borrow(request) as service:
        return JSONResponse({"purged": service.purge_dead(older_than, queue)})


@router.get("/throughput", response_model=schemas.Throughput, responses=errors(422, 503))
def throughput(
    request: Request, minutes: Annotated[int, Query(ge=1, le=MAX_MINUTES)] = 60
) -> JSONResponse:
    """Finished attempts per minute (completed, failed), oldest first, empty minutes too."""
    with borrow(request) as service:
        buckets = service.throughput(minutes)
    return JSONResponse(
        {
            "minutes": [
                {
                    "start": format_timestamp(bucket.start),
                    "completed": bucket.completed,
                    "failed": bucket.failed,
                }
                for bucket in buckets
            ]
        }
    )


@router.get("/queues", response_model=list[schemas.Queue], responses=errors(503))
def list_queues(request: Request) -> JSONResponse:
    """Every queue with its settings and a count per state."""
    with borrow(request) as service:
        queues = service.list_queues()
    return JSONResponse([info.to_json() for info in queues])
