"""The README is a guide that works from a fresh clone (issue 14): its first commands, its
links into docs/, its headings, and what `make demo` installs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _outside_code(path: Path) -> list[tuple[int, str]]:
    fenced = False
    lines = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def _anchor(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_readme_starts_with_the_two_commands_for_a_fresh_machine() -> None:
    text = (ROOT / "README.md").read_text()
    first_block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in first_block.splitlines()] == [
        "make demo",
        "make test",
    ]
    assert "worker start --detach" in text.split("## Commands")[0]  # the first session


@pytest.mark.parametrize("path", DOCS, ids=lambda path: path.name)
def test_every_heading_has_a_blank_line_before_it(path: Path) -> None:
    lines = path.read_text().splitlines()
    for number, line in _outside_code(path):
        if line.startswith("#") and number > 1:
            assert lines[number - 2] == "", f"{path.name}:{number}: {line}"


@pytest.mark.parametrize("path", DOCS, ids=lambda path: path.name)
def test_every_local_link_leads_somewhere(path: Path) -> None:
    for number, line in _outside_code(path):
        for target in LINK.findall(line):
            if target.startswith(("http://", "https://")):
                continue
            file, _, anchor = target.partition("#")
            linked = (path.parent / file).resolve() if file else path
            assert linked.exists(), f"{path.name}:{number}: {target}"
            if anchor and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.*)$", linked.read_text(), re.M)
                assert anchor in {_anchor(h) for h in headings}, f"{path.name}:{number}: {target}"


def test_readme_says_each_add_option_once() -> None:
    text = (ROOT / "README.md").read_text()
    assert text.count("`--env NAME=VALUE` (repeat it for several)") == 1
    assert len(text.splitlines()) < 800  # a guide; the reference parts live in docs/


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_installs_the_runtime_only_and_make_test_the_dev_tools() -> None:
    def planned(target: str) -> str:
        # -B plans every step as on a fresh clone, -n runs none of them.
        return subprocess.run(
            ["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout

    demo = planned("demo")
    assert "pip install --quiet -e .\n" in demo
    assert "[dev]" not in demo
    assert "pip install --quiet -e '.[dev]'" in planned("test")
