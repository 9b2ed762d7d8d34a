"""The job lifecycle as a Hypothesis state machine against the real stores.

Fake workers enqueue, claim, heartbeat, succeed, fail, crash and retry from the DLQ while
time moves on and stale claims are rescued. After every step: a job has at most one live
claim, a fenced claim changes nothing, attempts never go down, finished jobs stay
finished (only a DLQ retry brings a dead one back), and once time has passed every
run_at and lease, every unfinished job can be claimed.

SQLite runs on an injected clock. PostgreSQL takes its times from now(), so there time
is moved by shifting the stored times back instead (run_at, heartbeats), which is the
same to every query that compares them with now().
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from queuectl.core import lifecycle
from queuectl.core.models import FINISHED_STATES, Job, JobState, NewJob, RunResult
from queuectl.core.settings import Settings
from queuectl.service import QueueService
from queuectl.store.base import AttemptRecord, JobFilter, Store
from queuectl.store.sqlite import SqliteStore
from tests import pgtools

SETTINGS = Settings()  # backoff 2 ** n seconds, lease-timeout 30 s
SLOTS = ("a", "b", "c")  # fake worker processes; a crash replaces the one in a slot
# Which of the current jobs or claims a rule acts on: an index, so what is drawn never
# depends on the state (Hypothesis must be able to replay and shrink a failure).
PICK = st.integers(min_value=0, max_value=63)
FAR_FUTURE = 7200.0  # seconds: past every backoff (at most 2 ** 4) and lease used here


class FakeClock:
    def __init__(self) -> None:
        self.at = datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at


class SqliteWorld:
    """A SQLite store in a temporary folder, on a clock the machine moves."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="queuectl-lifecycle-"))
        self.clock = FakeClock()
        self.store: Store = SqliteStore(self.folder / "queuectl.db", clock=self.clock)
        self.store.migrate()

    def advance(self, seconds: float) -> None:
        self.clock.at += timedelta(seconds=seconds)

    def close(self) -> None:
        self.store.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class PostgresWorld:
    """A fresh PostgreSQL database; time moves by shifting the stored times back."""

    def __init__(self) -> None:
        from queuectl.store.postgres import PostgresStore

        self._database = pgtools.fresh_database()
        self.url = self._database.__enter__()
        self.store = PostgresStore(self.url)

    def advance(self, seconds: float) -> None:
        shift = {"by": float(seconds)}
        self.store.conn.execute(
            "UPDATE queuectl.jobs SET run_at = run_at - %(by)s * interval '1 second'", shift
        )
        self.store.conn.execute(
            "UPDATE queuectl.workers"
            " SET last_heartbeat = last_heartbeat - %(by)s * interval '1 second'",
            shift,
        )

    def close(self) -> None:
        self.store.close()
        self._database.__exit__(None, None, None)


class Lifecycle(RuleBasedStateMachine):
    world_type: Any = SqliteWorld

    def __init__(self) -> None:
        super().__init__()
        self.world = self.world_type()
        self.store = self.world.store
        self.service = QueueService(self.store)
        self.generation = 0
        self.workers = {slot: self._new_worker(slot) for slot in SLOTS}
        self.claims: dict[str, Job] = {}  # worker id -> the claim it believes it holds
        self.fenced: list[tuple[str, Job]] = []  # claims known to be lost
        self.crashed: dict[str, Job] = {}  # claims of vanished workers, not yet rescued
        self.seen_attempts: dict[str, int] = {}
        self.seen_states: dict[str, JobState] = {}
        self.retried: set[str] = set()  # jobs a DLQ retry moved during this step
        self.next_id = 0

    def teardown(self) -> None:
        self.world.close()

    def _new_worker(self, slot: str) -> str:
        self.generation += 1
        worker_id = f"{slot}{self.generation}"
        self.store.register_worker(worker_id, "host", 1000 + self.generation, None)
        return worker_id

    def _jobs(self) -> dict[str, Job]:
        return {job.id: job for job in self.store.list_jobs(JobFilter(limit=0))}

    def _due(self) -> tuple[set[str], set[str]]:
        """Claimable jobs now, and those that may become due within a second (PostgreSQL's
        clock moves by itself between this look and the claim)."""
        now = self.store.now()
        due, soon = set(), set()
        for job in self._jobs().values():
            if job.state in (JobState.PENDING, JobState.FAILED):
                if job.run_at <= now:
                    due.add(job.id)
                elif job.run_at <= now + timedelta(seconds=1):
                    soon.add(job.id)
        return due, soon

    # -- rules -------------------------------------------------------------------------

    @rule(
        max_retries=st.integers(0, 2),
        delay=st.sampled_from([None, None, 5.0, 100.0]),
        priority=st.integers(-1, 1),
    )
    def enqueue(self, max_retries: int, delay: float | None, priority: int) -> None:
        self.next_id += 1
        scheduled = self.store.now() + timedelta(seconds=delay) if delay else None
        job = NewJob(
            id=f"job-{self.next_id}",
            command="true",
            max_retries=max_retries,
            priority=priority,
            scheduled_at=scheduled,
        )
        self.store.insert_jobs([job])

    @rule(slot=st.sampled_from(SLOTS))
    def claim(self, slot: str) -> None:
        worker_id = self.workers[slot]
        if worker_id in self.claims:
            return  # a worker runs one job at a time
        due, soon = self._due()
        before = self._jobs()
        job = self.store.claim_job(worker_id, None)
        if job is None:
            assert not due, f"{sorted(due)} were due but no claim found them"
            return
        assert job.id in due | soon
        assert job.state is JobState.PROCESSING
        assert job.locked_by == worker_id
        assert job.attempts == before[job.id].attempts + 1
        self.claims[worker_id] = job

    @rule(slot=st.sampled_from(SLOTS))
    def heartbeat(self, slot: str) -> None:
        worker_id = self.workers[slot]
        held = self.claims.get(worker_id)
        self.store.heartbeat(worker_id, held.id if held else None)

    @rule(slot=st.sampled_from(SLOTS), exit_code=st.sampled_from([0, 0, 1, 127]))
    def finish(self, slot: str, exit_code: int) -> None:
        worker_id = self.workers[slot]
        job = self.claims.pop(worker_id, None)
        if job is None:
            return
        holds = self.store.holds_claim(job, worker_id)
        outcome = lifecycle.after_attempt(
            job.attempts, job.max_retries, RunResult(exit_code), job.timeout, SETTINGS
        )
        before = self.store.get_job(job.id)
        recorded = self.store.finish_attempt(job, worker_id, outcome, AttemptRecord(exit_code, ""))
        assert recorded == holds
        after = self.store.get_job(job.id)
        if not recorded:
            assert after == before, "a fenced claim changed the job"
            return
        assert after is not None
        assert after.state is outcome.state
        assert after.locked_by is None
        assert after.exit_code == exit_code

    @rule(pick=PICK)
    def finish_with_a_fenced_claim(self, pick: int) -> None:
        if not self.fenced:
            return
        worker_id, job = self.fenced[pick % len(self.fenced)]
        before = self.store.get_job(job.id)
        outcome = lifecycle.Outcome(JobState.COMPLETED, None, None)
        assert not self.store.finish_attempt(job, worker_id, outcome, AttemptRecord(0, "late"))
        assert not self.store.save_output(job, worker_id, "late output")
        assert self.store.get_job(job.id) == before

    @rule(seconds=st.sampled_from([1.0, 10.0, 31.0, 100.0]))
    def advance_clock(self, seconds: float) -> None:
        self.world.advance(seconds)

    @rule()
    def rescue_stale(self) -> None:
        rescued = self.service.rescue_stale(SETTINGS)
        for job in rescued:
            after = self.store.get_job(job.id)
            assert after is not None
            assert after.state in (JobState.FAILED, JobState.DEAD)
            assert after.attempts == job.attempts
        self._note_fenced()

    @rule(slot=st.sampled_from(SLOTS))
    def crash(self, slot: str) -> None:
        """The worker vanishes (SIGKILL, power loss): its claim stays until rescued."""
        worker_id = self.workers[slot]
        job = self.claims.pop(worker_id, None)
        if job is not None:
            self.crashed[worker_id] = job  # still held until a rescue fences it
        self.workers[slot] = self._new_worker(slot)

    @rule(pick=PICK)
    def cancel(self, pick: int) -> None:
        jobs = [job for job in self._jobs().values() if job.state not in FINISHED_STATES]
        if jobs:
            job = jobs[pick % len(jobs)]
            assert self.store.cancel_job(job.id) is not None
            self._note_fenced()

    @rule(pick=PICK)
    def dlq_retry(self, pick: int) -> None:
        jobs = list(self._jobs().values())  # in enqueue order
        if not jobs:
            return
        job = jobs[pick % len(jobs)]
        requeued = self.store.requeue_dead(job.id)
        assert requeued == (job.state is JobState.DEAD)
        if requeued:
            after = self.store.get_job(job.id)
            assert after is not None
            assert (after.state, after.attempts) == (JobState.PENDING, 0)
            self.retried.add(job.id)

    @precondition(lambda self: self.next_id > 0)
    @rule()
    def everything_becomes_claimable(self) -> None:
        """Past every run_at and lease, with the vanished workers' jobs rescued, every
        unfinished job that no live worker holds can be claimed."""
        for _ in range(2):  # a rescued run's retry waits for its backoff: pass that too
            self.world.advance(FAR_FUTURE)
            for worker_id, job in self.claims.items():
                self.store.heartbeat(worker_id, job.id)  # live workers keep their leases
            self.service.rescue_stale(SETTINGS)
            self._note_fenced()
        held = {job.id for job in self.claims.values()}
        waiting = {
            job.id
            for job in self._jobs().values()
            if job.state not in FINISHED_STATES and job.id not in held
        }
        claimed = set()
        while True:
            drainer = self._new_worker("drain")
            job = self.store.claim_job(drainer, None)
            if job is None:
                break
            claimed.add(job.id)
            self.claims[drainer] = job
        assert claimed == waiting

    # -- invariants --------------------------------------------------------------------

    def _note_fenced(self) -> None:
        """Move the claims that a rescue or cancel took away to the fenced list."""
        for worker_id, job in list(self.claims.items()):
            if not self.store.holds_claim(job, worker_id):
                del self.claims[worker_id]
                self.fenced.append((worker_id, job))
        for worker_id, job in list(self.crashed.items()):
            if not self.store.holds_claim(job, worker_id):
                del self.crashed[worker_id]
                self.fenced.append((worker_id, job))

    @invariant()
    def one_live_claim_per_job(self) -> None:
        jobs = self._jobs()
        holders: dict[str, list[str]] = {}
        for worker_id, job in self.claims.items():
            if self.store.holds_claim(job, worker_id):
                holders.setdefault(job.id, []).append(worker_id)
        assert all(len(workers) == 1 for workers in holders.values()), holders
        for job in jobs.values():
            open_attempts = [a for a in self.store.list_attempts(job.id) if a.finished_at is None]
            if job.state is JobState.PROCESSING:
                assert job.locked_by is not None
                assert [a.attempt for a in open_attempts] == [job.attempts]
            else:
                assert job.locked_by is None, job
                assert open_attempts == [], job

    @invariant()
    def attempts_never_go_down_and_finished_jobs_stay_finished(self) -> None:
        for job in self._jobs().values():
            if job.id in self.retried:
                self.seen_attempts[job.id] = 0
            else:
                assert job.attempts >= self.seen_attempts.get(job.id, 0), job
                previous = self.seen_states.get(job.id)
                if previous in FINISHED_STATES:
                    assert job.state is previous, (job.id, previous, job.state)
            self.seen_attempts[job.id] = job.attempts
            self.seen_states[job.id] = job.state
        self.retried.clear()


MACHINE_SETTINGS = settings(
    max_examples=100,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


TestSqliteLifecycle = Lifecycle.TestCase
TestSqliteLifecycle.settings = MACHINE_SETTINGS


class PostgresLifecycle(Lifecycle):
    world_type = PostgresWorld


TestPostgresLifecycle = pytest.mark.postgres(PostgresLifecycle.TestCase)
TestPostgresLifecycle.settings = settings(MACHINE_SETTINGS, max_examples=10)


def test_the_machine_can_fail() -> None:
    """The invariants are not vacuous: a store that lets attempts go down is caught."""
    machine = Lifecycle()
    try:
        machine.enqueue(max_retries=2, delay=None, priority=0)
        machine.claim("a")
        machine.attempts_never_go_down_and_finished_jobs_stay_finished()
        machine.world.store.conn.execute("UPDATE jobs SET attempts = 0")
        with pytest.raises(AssertionError):
            machine.attempts_never_go_down_and_finished_jobs_stay_finished()
    finally:
        machine.teardown()
