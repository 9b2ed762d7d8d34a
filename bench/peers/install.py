"""Find the peers, and install them on request: task-spooler with apt-get, huey and
pgqueuer into a scratch virtual environment under the user's cache folder.

Whatever cannot be found or installed is recorded with the reason, so that the figures
say "not measured: why" and the run goes on.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

# Lower bounds are the versions the drains were written against (their public APIs:
# SqliteHuey and Huey.task; PgQueuer, AsyncpgDriver, Queries.enqueue, drain mode).
VENV_PACKAGES = {"huey": ["huey>=2.5"], "pgqueuer": ["pgqueuer[asyncpg]>=1.6"]}
IMPORTS = {"huey": "import huey", "pgqueuer": "import pgqueuer, asyncpg"}
DISTRIBUTIONS = {"huey": "huey", "pgqueuer": "pgqueuer"}
TSP = "task-spooler"
INSTALL_TIMEOUT = 600.0  # seconds for one apt-get or pip run
CHECK_TIMEOUT = 60.0


@dataclass
class Peers:
    """What can be measured: each peer's program, or why it cannot be."""

    found: dict[str, Path] = field(default_factory=dict)  # peer -> program to run
    missing: dict[str, str] = field(default_factory=dict)  # peer -> reason
    versions: dict[str, str] = field(default_factory=dict)
    venv: Path | None = None

    @classmethod
    def off(cls, reason: str) -> Peers:
        return cls(missing={name: reason for name in (TSP, *VENV_PACKAGES)})

    def why_not(self, peer: str) -> str | None:
        if peer in self.found:
            return None
        return self.missing.get(peer, "not looked for")

    def program(self, peer: str) -> Path:
        return self.found[peer]

    def bin(self, name: str) -> Path:
        """A console script of the scratch environment (huey_consumer, pgq)."""
        assert self.venv is not None
        return self.venv / "bin" / name

    def summary(self) -> str:
        parts = [f"{name} {self.versions.get(name, '?')}" for name in sorted(self.found)]
        parts += [f"{name}: {why}" for name, why in sorted(self.missing.items())]
        return "; ".join(parts) or "none"


def cache_dir() -> Path:
    """Where the scratch environment lives: `QUEUECTL_BENCH_PEERS`, else the user's cache."""
    chosen = os.environ.get("QUEUECTL_BENCH_PEERS")
    if chosen:
        return Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "queuectl-bench" / "peers-venv"


def find_peers(python: str, *, install: bool) -> Peers:
    """The peers present on this machine; with `install`, the missing ones installed."""
    peers = Peers()
    _find_tsp(peers, install)
    _find_venv_peers(peers, python, install)
    return peers


def _find_tsp(peers: Peers, install: bool) -> None:
    program = shutil.which("tsp")
    if program is None and install:
        why = _apt_install(TSP)
        program = shutil.which("tsp")
        if program is None:
            peers.missing[TSP] = why or "apt-get installed no `tsp`"
            return
    if program is None:
        peers.missing[TSP] = "`tsp` is not installed (apt-get install task-spooler)"
        return
    peers.found[TSP] = Path(program)
    peers.versions[TSP] = _tsp_version(program)


def _apt_install(package: str) -> str | None:
    """Install a Debian package; None on success, else why not. The package lists are
    refreshed only when the first attempt fails."""
    if shutil.which("apt-get") is None:
        return "no apt-get on this machine"
    if os.geteuid() != 0:
        return "installing it needs root (apt-get install task-spooler)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", package]
    print(f"installing {package} with apt-get ...", flush=True)
    if _run(install, env) is None:
        return None
    _run(["apt-get", "update", "-qq"], env)
    return _run(install, env)


def _find_venv_peers(peers: Peers, python: str, install: bool) -> None:
    venv = cache_dir()
    interpreter = venv / "bin" / "python"
    wanted = list(VENV_PACKAGES)
    absent = [name for name in wanted if not _imports(interpreter, name)]
    if absent and install:
        why = _venv_install(venv, python, absent)
        for name in absent:
            if why is not None and not _imports(interpreter, name):
                peers.missing[name] = why
        absent = [name for name in absent if not _imports(interpreter, name)]
    for name in wanted:
        if name in absent:
            peers.missing.setdefault(
                name, f"not installed in {venv} (run the benchmark with --peers)"
            )
            continue
        peers.found[name] = interpreter
        peers.versions[name] = _distribution_version(interpreter, DISTRIBUTIONS[name])
    peers.venv = venv


def _venv_install(venv: Path, python: str, names: list[str]) -> str | None:
    """Create the scratch environment if needed and pip-install the peers into it."""
    print(f"installing {', '.join(names)} into {venv} ...", flush=True)
    if not (venv / "bin" / "python").exists():
        venv.parent.mkdir(parents=True, exist_ok=True)
        why = _run([python, "-m", "venv", str(venv)], dict(os.environ))
        if why is not None:
            return f"could not create {venv}: {why}"
    requirements = [spec for name in names for spec in VENV_PACKAGES[name]]
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *requirements]
    why = _run(pip, dict(os.environ))
    return None if why is None else f"pip install failed: {why}"


def _imports(interpreter: Path, name: str) -> bool:
    if not interpreter.exists():
        return False
    return _run([str(interpreter), "-c", IMPORTS[name]], dict(os.environ), CHECK_TIMEOUT) is None


def _distribution_version(interpreter: Path, distribution: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({distribution!r}))"
    try:
        done = subprocess.run(
            [str(interpreter), "-c", code],
            capture_output=True, text=True, timeout=CHECK_TIMEOUT, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "?"
    return done.stdout.strip()


def _tsp_version(program: str) -> str:
    try:
        done = subprocess.run(
            [program, "-V"], capture_output=True, text=True, timeout=CHECK_TIMEOUT, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return "?"
    found = re.search(r"\bv(\d[\w.+-]*)", done.stdout or done.stderr)
    return found.group(1) if found else "?"


def _run(argv: list[str], env: dict[str, str], timeout: float = INSTALL_TIMEOUT) -> str | None:
    """Run an install step; None on success, else its last line of output."""
    try:
        done = subprocess.run(
            argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    if done.returncode == 0:
        return None
    lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
    return lines[-1][:300] if lines else f"exit status {done.returncode}"
