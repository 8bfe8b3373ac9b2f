"""The CLI's parser: `starter.py --help` lists every command with the help line its module gives, and loads only
what that needs (a command's module, with its Temporal/Azure/engine imports, is loaded when the command runs)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from client import cli

ROOT = Path(__file__).resolve().parents[2]


def _help_lines(parser: argparse.ArgumentParser) -> dict[str, str | None]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {action.dest: action.help for action in sub._choices_actions}


def test_every_command_is_listed_with_its_modules_own_help_line() -> None:
    """The table's help lines are what each module says of itself (so `--help` and `COMMAND --help` agree)."""
    full = _help_lines(cli.build_parser())
    listed = _help_lines(cli.build_parser(""))
    assert list(listed) == [*cli.COMMANDS, "local-arm"]  # local-arm: dispatched by starter.py, listed for --help
    assert full == listed


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_a_command_parses_with_only_its_module(command: str) -> None:
    parser = cli.build_parser(command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    # the chosen command has its real options; the others are placeholders without any
    assert len(sub.choices[command]._actions) > 1 or command in {"dev", "demo"}


def test_help_loads_no_temporal_azure_or_engine_code() -> None:
    probe = (
        "import sys, contextlib, io\n"
        "from client import cli\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    cli.main(['--help'])\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'temporalio', 'azure', 'arm_engine', 'pydantic'})\n"
        "print(','.join(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"`--help` imported {proc.stdout.strip()}"


def test_an_unknown_command_is_a_usage_error_naming_the_choices() -> None:
    proc = subprocess.run(
        [sys.executable, "starter.py", "deploi"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "invalid choice: 'deploi'" in proc.stderr and "deploy" in proc.stderr
