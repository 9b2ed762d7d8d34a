"""docs/python-api.md: every ```python example runs as written, on both backends, and the
names it calls stable are exactly those `queuectl` exports."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import queuectl

DOC = Path(__file__).resolve().parents[2] / "docs" / "python-api.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def examples() -> list[tuple[int, str]]:
    """(line number, code) of each python block of the document."""
    text = DOC.read_text(encoding="utf-8")
    return [
        (text.count("\n", 0, found.start()) + 1, found.group(1)) for found in BLOCK.finditer(text)
    ]


EXAMPLES = examples()


def test_the_document_has_an_example_for_each_part() -> None:
    code = "\n".join(block for _, block in EXAMPLES)
    for call in (
        "Queue()",
        ".enqueue(",
        ".enqueue_many(",
        ".get(",
        ".jobs(",
        ".status()",
        ".wait(",
        ".cancel(",
        ".retry(",
    ):
        assert call in code, f"no example calls {call}"


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
@pytest.mark.parametrize(("line", "code"), EXAMPLES, ids=[f"line{line}" for line, _ in EXAMPLES])
def test_example_runs(line: int, code: str, store: str, tmp_path: Path) -> None:
    if store == "sqlite":
        _run_example(code, str(tmp_path / "store" / "queuectl.db"), tmp_path)
    else:
        from tests import pgtools

        with pgtools.fresh_database() as url:
            _run_example(code, url, tmp_path)


def _run_example(code: str, target: str, tmp_path: Path) -> None:
    """As a reader would run it: a fresh interpreter, `queuectl` on PATH, the store in
    QUEUECTL_DB."""
    bin_dir = str(Path(sys.executable).parent)
    env = dict(
        os.environ,
        QUEUECTL_DB=target,
        QUEUECTL_HOME=str(tmp_path / "home"),
        PATH=os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def test_the_stable_names_are_the_exported_ones() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Stable names", 1)[1]
    bullets = section.split("Everything else", 1)[0].split("\n- ", 1)[1]
    without_asides = re.sub(r"\([^)]*\)", "", bullets)
    listed = set(re.findall(r"`([A-Za-z_]+)`", without_asides))
    methods = {
        "enqueue",
        "enqueue_many",
        "get",
        "jobs",
        "status",
        "cancel",
        "retry",
        "wait",
        "close",
        "target",
        "with",
    }
    assert listed - methods == set(queuectl.__all__)
    for method in methods - {"with"}:
        assert hasattr(queuectl.Queue, method), method
