"""The docs cannot drift from the flags: every command line README.md and docs/*.md show in a fenced shell block
(```bash, ```sh, ```shell, ```console, ```text) — `python starter.py …`, `bicep-orchestrator …`, `python worker.py
…`, `bicep-orchestrator-worker …`, `python starter.py local-arm …` — is parsed with the CLI's own parser
(client.cli.build_parser, worker.build_parser, local_arm.cli.build_parser). An unknown subcommand or flag, a
flag missing its value or a value outside its choices fails the test, naming the file, the line and argparse's
message.

Documentation notation is read as a reader reads it: ``[...]`` is optional (parsed with its content), ``A|B`` are
alternatives (the first is parsed), ``...``/``…`` after an argument means "more of the same" and is dropped, ``<x>``
is a value, and a ``# comment`` ends the line. Shell continuations (``\\``) join lines; ``$ `` prompts are dropped.

And the README's statement of which commands take ``--local`` and ``--output`` is checked against the parser.
"""

from __future__ import annotations

import re

import pytest

from tests.support.doc_commands import (  # noqa: F401
    DOCS,
    ENTRY_POINTS,
    PLACEHOLDER,
    ROOT,
    SHELL_FENCES,
    _parser,
    _subcommand,
    _unbracket,
    command_argv,
    documented_commands,
    fenced_shell_lines,
    parse_failure,
)


def test_the_docs_show_commands_of_every_entry_point() -> None:
    kinds = {which for _, _, which, _ in documented_commands()}
    assert {"cli", "worker", "local-arm"} <= kinds, kinds  # the extraction finds them (a test that cannot fail is none)


@pytest.mark.parametrize(("where", "which", "argv"), [(w, k, a) for w, _, k, a in documented_commands()],
                         ids=lambda v: v if isinstance(v, str) and ":" in v else "")  # fmt: skip
def test_every_documented_command_line_parses(where: str, which: str, argv: list[str]) -> None:
    problem = parse_failure(which, argv)
    assert problem is None, f"{where}: `{' '.join(argv)}` does not parse: {problem}"


def test_an_unknown_flag_or_subcommand_is_caught() -> None:
    """The check itself: a typo'd flag, an unknown subcommand and a bad choice are refused by the same path."""
    assert command_argv("python starter.py deploy -g rg -l eastus -t main.json --frobnicate") is not None
    assert parse_failure("cli", ["deploy", "-g", "rg", "-l", "eastus", "-t", "main.json", "--frobnicate"])
    assert parse_failure("cli", ["deplyo", "-g", "rg"])
    assert parse_failure("cli", ["audit", "ID", "--audit-format", "xml"])
    assert parse_failure("worker", ["--no-such-flag"])
    assert command_argv("python starter.py list [-g RG] [--state COMPLETED|FAILED|...]  # newest first") == (
        "cli",
        ["list", "-g", "RG", "--state", "COMPLETED"],
    )
    assert parse_failure("cli", ["list", "--state", "STAGE"]) is None  # a placeholder for a choice
    assert parse_failure("cli", ["list", "--state", "COMPLETD"])  # a misspelt choice
    assert parse_failure("cli", ["lint", "-t", "x.json", "--output", "xml"])
    assert parse_failure("cli", ["deploy", "...", "--audit-format", "json"]) is None  # elided required arguments
    assert parse_failure("cli", ["deploy", "...", "--audit-fromat", "json"])


# ---------------------------------------------------------------------------------------- --local and --output

TARGET_COMMANDS = ["deploy", "approve", "reject", "rollback-params", "status", "list", "audit"]
OUTPUT_ONLY = ["expand", "lint", "demo", "dev"]
NEITHER = ["codec-server"]
MINIMAL_ARGS = {
    "deploy": ["-g", "rg", "-l", "eastus", "-t", "main.json"],
    "approve": ["ID"],
    "reject": ["ID"],
    "rollback-params": ["ID", "--param", "pw"],
    "status": ["ID"],
    "audit": ["ID"],
    "expand": ["-t", "main.json", "-g", "rg", "-l", "eastus"],
    "lint": ["-t", "main.json"],
}


def _accepts(command: str, *flags: str) -> bool:
    return parse_failure("cli", [command, *MINIMAL_ARGS.get(command, []), *flags]) is None


def test_the_readme_says_precisely_which_commands_take_local_and_output() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    statement = readme.split("<!-- flags: local-output -->", 1)[1].split("<!-- /flags -->", 1)[0]
    named = set(re.findall(r"`([a-z-]+)`", statement))
    assert set(TARGET_COMMANDS + OUTPUT_ONLY + NEITHER + ["local-arm"]) <= named, named
    for command in TARGET_COMMANDS:
        assert _accepts(command, "--local") and _accepts(command, "--output", "json"), command
    for command in OUTPUT_ONLY:
        assert _accepts(command, "--output", "json"), command
        assert not _accepts(command, "--local"), f"{command} takes --local: the README says it does not"
    for command in NEITHER:
        assert not _accepts(command, "--local") and not _accepts(command, "--output", "json"), command
    assert parse_failure("local-arm", ["--output", "json"]) and parse_failure("local-arm", ["--local"])


# ------------------------------------------------------------------------------------------ figures that repeat

FIGURE_100 = re.compile(
    r"100 concurrent deployments\s+into 100 resource\s+groups through one worker:\s+(\d+(?:\.\d+)?) s,\s+peak worker"
    r"\s+RSS (\d+) MiB \((\d{4}-\d\d-\d\d)"
)


def test_the_100_deployment_figures_agree_wherever_they_are_quoted() -> None:
    """README and docs/OPERATIONS.md quote the same (latest, dated) figures, and docs/BENCHMARKS.md holds them."""
    quoted = {}
    for name in ("README.md", "docs/OPERATIONS.md"):
        found = FIGURE_100.findall((ROOT / name).read_text(encoding="utf-8"))
        assert len(found) == 1, f"{name} should quote the 100-deployment run once, dated: {found}"
        quoted[name] = found[0]
    assert len(set(quoted.values())) == 1, quoted
    seconds, mib, _date = next(iter(quoted.values()))
    bench = (ROOT / "docs" / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert f"**{seconds} s**" in bench and f"**{mib} MiB**" in bench
