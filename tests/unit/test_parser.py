"""The parser builds only the part a command line names, and the whole of it otherwise."""

from __future__ import annotations

import subprocess
import sys

import pytest

from queuectl.cli import _command_word
from queuectl.cli.parser import COMMAND_MODULES, build_parser


@pytest.mark.parametrize(
    ("words", "command"),
    [
        (["show", "a"], "show"),
        (["--db", "x.db", "list"], "list"),
        (["--db=x.db", "status", "--json"], "status"),
        (["--version"], "--version"),
        ([], None),
    ],
)
def test_command_word_skips_the_global_db_option(words: list[str], command: str | None) -> None:
    assert _command_word(words) == command


def test_every_command_parses_with_only_its_own_module() -> None:
    for command in COMMAND_MODULES:
        parser = build_parser(command)
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([command, "--help"])
        assert exit_info.value.code == 0


def test_an_unknown_command_lists_every_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "queuectl", "lst"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "invalid choice: 'lst'" in result.stderr
    for command in COMMAND_MODULES:
        assert f"'{command}'" in result.stderr


def test_show_does_not_import_the_other_commands() -> None:
    code = (
        "import sys; from queuectl.cli.parser import build_parser; build_parser('show');"
        " print(sorted(m for m in sys.modules if m.startswith('queuectl.cli.commands.')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "['queuectl.cli.commands.show']"
