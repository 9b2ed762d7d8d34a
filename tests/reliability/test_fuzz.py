"""Fuzzing the commands that take user input (issue 4): `enqueue JSON`, `enqueue -`, `add`,
`config set` and `list` get Hypothesis-made JSON and arguments, valid-looking and not.

Whatever they get, they must exit 0 or 2 (SPEC 4), a failure must be one `error:` line on
stderr with nothing on stdout and no traceback, and the store's job count must change only
on exit 0, by exactly the number of ids printed. Most examples call `queuectl.cli.main`
in-process against one store per backend; a smaller sample runs the real `queuectl` entry
point in a subprocess and must answer exactly as the in-process call did.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from queuectl.core.settings import CONFIG_KEYS, Settings
from queuectl.core.states import JobState
from queuectl.store import open_store
from queuectl.store.base import Store
from tests import pgtools
from tests.conftest import BACKENDS
from tests.conftest import run_in_process as in_process

TAKEN_ID = "taken-id"  # already in every fuzzed store: reusing it must be refused
FUZZ = settings(
    max_examples=60,
    deadline=None,  # a loaded 2-core machine; the suite's timeout still bounds a hang
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,  # the same examples on every run: a failure here is reproducible
)
SUBPROCESS = settings(FUZZ, max_examples=6)


# -- running the command --------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


def run_in_process(target: str, argv: list[str], stdin: bytes = b"") -> Outcome:
    """`queuectl --db TARGET ARGV` through main(), streams encoded as a real process's."""
    result = in_process(["--db", target, *argv], os.environ, stdin)
    return Outcome(result.returncode, result.stdout, result.stderr)


def run_subprocess(target: str, argv: list[str], stdin: bytes = b"") -> Outcome:
    env = dict(os.environ, QUEUECTL_DB=target)
    env.pop("QUEUECTL_HOME", None)
    result = subprocess.run(
        [sys.executable, "-m", "queuectl", "--db", target, *argv],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    return Outcome(
        result.returncode,
        result.stdout.decode("utf-8", "replace"),
        result.stderr.decode("utf-8", "replace"),
    )


def assert_well_behaved(outcome: Outcome, allowed: tuple[int, ...] = (0, 2)) -> None:
    """SPEC 4: an allowed status; a failure is one `error:` line (after argparse's usage
    lines, if any) with nothing on stdout and never a traceback."""
    assert "Traceback" not in outcome.stderr, outcome.stderr
    assert outcome.code in allowed, outcome
    if outcome.code == 0:
        return
    assert outcome.stdout == "", outcome
    lines = outcome.stderr.splitlines()
    assert lines, outcome
    assert lines[-1].startswith("error: "), outcome
    assert sum(line.startswith("error:") for line in lines) == 1, outcome
    if len(lines) > 1:
        assert lines[0].startswith("usage: "), outcome


# -- the stores -----------------------------------------------------------------------


@dataclass
class FuzzStore:
    target: str
    store: Store

    def job_count(self) -> int:
        return sum(self.store.count_jobs_by_state().values())

    def config(self) -> dict[str, str]:
        return self.store.get_config()


@pytest.fixture(scope="module", params=BACKENDS)
def fuzz_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzStore]:
    """One store per backend for the module: every example must leave it consistent, and
    one holding thousands of fuzzed jobs is a fair test of its own."""
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            target = str(tmp_path_factory.mktemp("fuzz") / "queuectl.db")
        else:
            target = stack.enter_context(pgtools.fresh_database())
        store = open_store(target)
        stack.callback(store.close)
        assert run_in_process(target, ["enqueue", json.dumps({"id": TAKEN_ID, "command": "true"})])
        yield FuzzStore(target, store)


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzStore]:
    target = str(tmp_path_factory.mktemp("fuzz-subprocess") / "queuectl.db")
    store = open_store(target)
    try:
        run_in_process(target, ["enqueue", json.dumps({"id": TAKEN_ID, "command": "true"})])
        yield FuzzStore(target, store)
    finally:
        store.close()


# -- strategies -----------------------------------------------------------------------

SURROGATES = st.characters(categories=["Cs"])
ODD_TEXT = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=st.one_of(st.characters(), SURROGATES), max_size=10),
    st.sampled_from(["", " ", "\x00", "a\x00b", "\t\n", "\u2028", "\ufeff", "é", "🙂", "\\"]),
    st.builds(lambda ch, n: ch * n, st.characters(), st.integers(1, 70_000)),  # very long
)
HUGE_INTS = st.one_of(
    st.integers(),
    st.integers(min_value=2**31 - 2, max_value=2**31 + 2),
    st.integers(min_value=-(2**31) - 2, max_value=-(2**31) + 2),
    st.sampled_from([2**63, -(2**63) - 1, 10**400, -(10**400), 0, -1, 1000, 1001]),
)
NUMBERS = st.one_of(
    HUGE_INTS,
    st.floats(),  # NaN and +-Infinity included: they serialise as the bare words
    st.sampled_from([0.5, 1.0, -0.0, 1e-320, 1e308, 5e-324]),
)
JSON_LEAVES = st.one_of(st.none(), st.booleans(), NUMBERS, ODD_TEXT)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ODD_TEXT, inner, max_size=3),
    max_leaves=8,
)
VALID_IDS = st.from_regex(r"[A-Za-z0-9._:@-]{1,128}", fullmatch=True)
IDS = st.one_of(VALID_IDS, ODD_TEXT, st.just(TAKEN_ID), st.integers(), st.none())
TIMES = st.one_of(
    st.datetimes().map(lambda moment: moment.isoformat()),
    st.sampled_from(["2026-01-01T00:00:00Z", "9999-12-31T23:59:59-05:00", "0001-01-01", "now"]),
    ODD_TEXT,
)
QUEUES = st.one_of(st.from_regex(r"[A-Za-z0-9_.-]{1,10}", fullmatch=True), ODD_TEXT)
ENV = st.one_of(
    st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,5}", fullmatch=True), ODD_TEXT, max_size=3),
    JSON_VALUES,
)
FIELD_VALUES = {
    "id": IDS,
    "command": st.one_of(ODD_TEXT, st.just("echo hello"), JSON_VALUES),
    "max_retries": st.one_of(NUMBERS, JSON_VALUES),
    "priority": st.one_of(NUMBERS, JSON_VALUES),
    "queue": st.one_of(QUEUES, JSON_VALUES),
    "timeout": st.one_of(NUMBERS, JSON_VALUES),
    "scheduled_at": st.one_of(TIMES, JSON_VALUES),
    "cwd": st.one_of(ODD_TEXT, st.just("/tmp"), JSON_VALUES),
    "env": ENV,
}
JOB_OBJECTS = st.fixed_dictionaries(
    {"command": st.one_of(st.just("true"), st.just("echo hi"), FIELD_VALUES["command"])},
    optional={
        **{key: values for key, values in FIELD_VALUES.items() if key != "command"},
        "retries": NUMBERS,  # unknown keys
        "Command": ODD_TEXT,
    },
)


@st.composite
def job_texts(draw: st.DrawFn) -> str:
    """One enqueue argument: a job object (often valid), any JSON, or broken JSON."""
    kind = draw(st.sampled_from(["job", "job", "job", "json", "broken", "deep"]))
    if kind == "job":
        return json.dumps(draw(JOB_OBJECTS))
    if kind == "json":
        return json.dumps(draw(JSON_VALUES))
    if kind == "deep":
        depth = draw(st.integers(1, 200_000))
        return "[" * depth + "]" * draw(st.integers(0, depth))
    text = json.dumps(draw(JOB_OBJECTS))
    cut = draw(st.integers(0, len(text)))
    return text[:cut] + draw(st.sampled_from(["", "}", ",", "x", "\x00", '"', "\\u12"]))


@st.composite
def job_lines(draw: st.DrawFn) -> bytes:
    """`enqueue -` input: JSON lines, blank lines, CRLF endings, bytes that are not UTF-8."""
    lines: list[bytes] = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["job", "job", "text", "blank", "bytes"]))
        if kind == "job":
            line = json.dumps(draw(JOB_OBJECTS)).encode()
        elif kind == "text":
            line = draw(job_texts()).encode("utf-8", "surrogatepass")
        elif kind == "blank":
            line = draw(st.sampled_from([b"", b"  ", b"\t", b"\r"]))
        else:
            line = draw(st.binary(max_size=30)).replace(b"\n", b" ")
        lines.append(line.replace(b"\n", b" "))
    ending = draw(st.sampled_from([b"\n", b"\r\n"]))
    return ending.join(lines) + draw(st.sampled_from([b"", ending]))


ARG_TEXT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "-", "--", "-1", "0", "1", "30s", "5m", "1.5", "1e3", "inf", "nan"]),
    st.integers().map(str),
    st.sampled_from([str(10**30), str(2**63), "9" * 400]),
)


@st.composite
def add_arguments(draw: st.DrawFn) -> list[str]:
    options = {
        "--id": IDS.map(str),
        "--max-retries": ARG_TEXT,
        "--priority": ARG_TEXT,
        "--queue": QUEUES,
        "--delay": st.one_of(ARG_TEXT, st.sampled_from(["1w", "250ms", "99999999999d"])),
        "--at": TIMES,
        "--timeout": ARG_TEXT,
        "--cwd": st.one_of(ODD_TEXT, st.just("/tmp")),
        "--env": st.one_of(ODD_TEXT, st.just("A=1"), st.just("=x")),
    }
    argv = ["add"]
    for name in draw(st.lists(st.sampled_from(sorted(options)), max_size=4)):
        argv += [name, draw(options[name])]
    if draw(st.booleans()):
        argv.append("--json")
    command = draw(st.lists(st.one_of(ODD_TEXT, st.just("echo")), max_size=3))
    if draw(st.booleans()):
        argv.append("--")
    return argv + command


CONFIG_VALUES = st.one_of(
    ARG_TEXT,
    st.floats().map(repr),
    st.sampled_from(["1e308", "1e-308", "0.00000001s", "315360001", "7d", "1w", "0", " 3 ", "3_0"]),
    st.from_regex(r"\d{1,12}(\.\d{1,12})?(ms|s|m|h|d|w)?", fullmatch=True),
)


@st.composite
def list_arguments(draw: st.DrawFn) -> list[str]:
    states = st.lists(
        st.one_of(st.sampled_from([state.value for state in JobState]), ODD_TEXT), max_size=3
    ).map(",".join)
    options = {"--state": states, "--queue": QUEUES, "--limit": ARG_TEXT}
    argv = ["list"]
    for name in draw(st.lists(st.sampled_from(sorted(options)), max_size=3, unique=True)):
        argv += [name, draw(options[name])]
    if draw(st.booleans()):
        argv.append("--json")
    return argv


# -- the properties -------------------------------------------------------------------


def new_ids(outcome: Outcome, as_json: bool) -> list[str]:
    """The ids a successful enqueue or add printed."""
    if not as_json:
        return outcome.stdout.splitlines()
    printed = json.loads(outcome.stdout)
    jobs = printed if isinstance(printed, list) else [printed]
    return [job["id"] for job in jobs]


def check_adds_jobs(fuzz: FuzzStore, argv: list[str], stdin: bytes = b"") -> Outcome:
    """Run a command that adds jobs; the count moves only on success, by the ids printed."""
    before = fuzz.job_count()
    outcome = run_in_process(fuzz.target, argv, stdin)
    assert_well_behaved(outcome)
    after = fuzz.job_count()
    if outcome.code == 0:
        ids = new_ids(outcome, "--json" in argv)
        assert after - before == len(ids), (outcome, before, after)
        assert len(set(ids)) == len(ids)
    else:
        assert after == before, (outcome, before, after)
    return outcome


@FUZZ
@given(text=job_texts())
@example(text='{"command": "true", "timeout": ' + "1" * 400 + "}")  # int beyond float
@example(text="[" * 100_000)  # nested past the recursion limit
@example(text='{"command": "true", "cwd": "\\udcff"}')  # not UTF-8: stores refused it
@example(text='{"command": "true", "env": {"A": "\\udcff"}}')  # could not be printed
@example(text='{"command": "true", "timeout": NaN}')
@example(text=json.dumps({"id": TAKEN_ID, "command": "true"}))
def test_fuzz_enqueue_json(fuzz_store: FuzzStore, text: str) -> None:
    outcome = check_adds_jobs(fuzz_store, ["enqueue", text])
    if outcome.code == 0:
        assert len(outcome.stdout.splitlines()) == 1
    with_json = check_adds_jobs(fuzz_store, ["enqueue", text, "--json"])
    if outcome.code != 0:  # refused for what it is, not by chance: refused again
        assert with_json.code == outcome.code
        assert with_json.stderr == outcome.stderr


@FUZZ
@given(data=job_lines())
@example(data=b'{"command": "true"}\n' + b"[" * 100_000 + b"\n")
@example(data=b'{"command": "a"}\n{"command": "b", "cwd": "\xff"}\n')
@example(data=b'{"command": "a"}\r\n\r\n{"command": "b"}\r\n')
@example(data=b'{"id": "twice", "command": "a"}\n{"id": "twice", "command": "b"}\n')
def test_fuzz_enqueue_lines(fuzz_store: FuzzStore, data: bytes) -> None:
    outcome = check_adds_jobs(fuzz_store, ["enqueue", "-"], data)
    lines = data.split(b"\n")
    if outcome.code == 0:
        # Blank as `enqueue -` sees it: decoded, then stripped of any whitespace.
        jobs = [line for line in lines if line.decode("utf-8", "surrogateescape").strip()]
        assert len(outcome.stdout.splitlines()) == len(jobs)
        return
    numbered = re.match(r"error: line (\d+): ", outcome.stderr)
    if numbered:  # the line named is one that is there and not blank
        line = lines[int(numbered.group(1)) - 1]
        assert line.decode("utf-8", "surrogateescape").strip(), outcome


@FUZZ
@given(argv=add_arguments())
@example(argv=["add", "--cwd", "\udcff", "--", "true"])  # not UTF-8: stores refused it
@example(argv=["add", "--env", "A=\udcff", "--", "true"])
@example(argv=["add", "--timeout", "9" * 400, "--", "true"])
@example(argv=["add", "--delay", "9" * 400, "--", "true"])
@example(argv=["add", "--id", TAKEN_ID, "--", "true"])
def test_fuzz_add(fuzz_store: FuzzStore, argv: list[str]) -> None:
    check_adds_jobs(fuzz_store, argv)


@FUZZ
@given(key=st.one_of(st.sampled_from(sorted(CONFIG_KEYS)), ODD_TEXT), value=CONFIG_VALUES)
@example(key="lease-timeout", value="1e308")  # then every PostgreSQL command failed
@example(key="backoff-max", value="1e308")
@example(key="retention-dead", value="99999999999999w")
@example(key="retention-dead", value="0.00000001s")  # was saved as "1e-08s", unreadable
@example(key="output-limit", value="9" * 30)
def test_fuzz_config_set(fuzz_store: FuzzStore, key: str, value: str) -> None:
    target = fuzz_store.target
    before = fuzz_store.config()
    count = fuzz_store.job_count()
    outcome = run_in_process(target, ["config", "set", key, value])
    assert_well_behaved(outcome)
    if outcome.code != 0:
        assert fuzz_store.config() == before
        return
    try:
        # What was accepted reads back as set, and every command still works with it.
        shown = outcome.stdout.strip().split(" = ", 1)[1]
        got = run_in_process(target, ["config", "get", key])
        assert (got.code, got.stdout.strip()) == (0, shown), got
        for argv in (["list", "--limit", "1"], ["status", "--json"], ["add", "--", "true"]):
            assert_well_behaved(run_in_process(target, argv), allowed=(0,))
        assert fuzz_store.job_count() == count + 1
    finally:  # the next examples start from the defaults again
        spec = CONFIG_KEYS[key]
        fuzz_store.store.set_config(key, before.get(key, spec.format(Settings().value_of(key))))


@FUZZ
@given(argv=list_arguments())
@example(argv=["list", "--limit", "99999999999999999999"])  # overflowed the stores' LIMIT
@example(argv=["list", "--limit", str(2**63)])
@example(argv=["list", "--state", "pending,", "--json"])
def test_fuzz_list(fuzz_store: FuzzStore, argv: list[str]) -> None:
    count = fuzz_store.job_count()
    outcome = run_in_process(fuzz_store.target, argv)
    assert_well_behaved(outcome)
    assert fuzz_store.job_count() == count
    if outcome.code == 0 and "--json" in argv:
        jobs = json.loads(outcome.stdout)
        assert isinstance(jobs, list)
        limit = int(argv[argv.index("--limit") + 1]) if "--limit" in argv else 100
        if 0 < limit < 2**62:
            assert len(jobs) <= limit


# -- the real entry point -------------------------------------------------------------


@SUBPROCESS
@given(text=job_texts())
@example(text="[" * 100_000)
@example(text='{"command": "true", "env": {"A": "\\udcff"}}')
def test_fuzz_enqueue_json_through_the_real_command(sqlite_store: FuzzStore, text: str) -> None:
    """The entry point a user runs answers as main() does: same status, same message."""
    _same_through_both(sqlite_store, ["enqueue", text])


@SUBPROCESS
@given(data=job_lines())
@example(data=b'{"command": "a"}\n{"command": "b", "cwd": "\xff"}\n')
def test_fuzz_enqueue_lines_through_the_real_command(sqlite_store: FuzzStore, data: bytes) -> None:
    _same_through_both(sqlite_store, ["enqueue", "-"], data)


@SUBPROCESS
@given(argv=st.one_of(add_arguments(), list_arguments()))
@example(argv=["list", "--limit", "99999999999999999999"])
def test_fuzz_add_and_list_through_the_real_command(
    sqlite_store: FuzzStore, argv: list[str]
) -> None:
    _same_through_both(sqlite_store, argv)


def _same_through_both(fuzz: FuzzStore, argv: list[str], stdin: bytes = b"") -> None:
    argv = [_as_received(word) for word in argv]
    before = fuzz.job_count()
    real = run_subprocess(fuzz.target, argv, stdin)
    assert_well_behaved(real)
    added = fuzz.job_count() - before
    if real.code == 0 and argv[0] in ("enqueue", "add"):
        assert added == len(new_ids(real, "--json" in argv)), real
    else:
        assert added == 0, real
    if real.code != 0:
        # The same input in-process is refused the same way (a taken id stays taken).
        again = run_in_process(fuzz.target, argv, stdin)
        assert (again.code, again.stderr) == (real.code, real.stderr)


def _as_received(word: str) -> str:
    """A word as a process finds it in argv: no NUL (argv cannot carry one), short enough
    for the kernel's limit on one argument, and decoded from bytes as Python does."""
    word = word.replace("\x00", "")[:20_000]
    try:
        raw = os.fsencode(word)
    except UnicodeEncodeError:  # a lone surrogate that stands for no byte
        raw = word.encode("utf-8", "replace")
    return os.fsdecode(raw)
