"""The docs cannot drift from the flags: every command line README.md and docs/*.md show in a fenced shell block
(```bash, ```sh, ```shell, ```console, ```text) — `python starter.py …`, `bicep-orchestrator …`, `python worker.py
…`, `bicep-orchestrator-worker …`, `python starter.py local-arm …` — is parsed with the CLI's own parser
(orchestrator.cli.build_parser, worker.build_parser, local_arm.cli.build_parser). An unknown subcommand or flag, a
flag missing its value or a value outside its choices fails the test, naming the file, the line and argparse's
message.

Documentation notation is read as a reader reads it: ``[...]`` is optional (parsed with its content), ``A|B`` are
alternatives (the first is parsed), ``...``/``…`` after an argument means "more of the same" and is dropped, ``<x>``
is a value, and a ``# comment`` ends the line. Shell continuations (``\\``) join lines; ``$ `` prompts are dropped.

And the README's statement of which commands take ``--local`` and ``--output`` is checked against the parser.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_FENCES = {"bash", "sh", "shell", "console", "text", "shell-session", ""}
ENTRY_POINTS = {
    ("python", "starter.py"): "cli",
    ("bicep-orchestrator",): "cli",
    ("python", "worker.py"): "worker",
    ("bicep-orchestrator-worker",): "worker",
}


def fenced_shell_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, command) for every logical line of every fenced shell block, continuations joined."""
    lang: str | None = None
    pending = ""
    start = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = re.match(r"^\s*```\s*([\w-]*)", line)
        if fence:
            lang = None if lang is not None else fence.group(1).lower()
            pending = ""
            continue
        if lang is None or lang not in SHELL_FENCES:
            continue
        text = line.strip()
        if text.startswith("$ "):
            text = text[2:]
        if not pending:
            start = number
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        yield start, pending + text
        pending = ""


def _unbracket(text: str) -> str:
    """``[--output json]`` → ``--output json`` (optional parts are parsed), innermost first."""
    previous = None
    while previous != text:
        previous = text
        text = re.sub(r"\[([^\[\]]*)\]", r" \1 ", text)
    return text


PLACEHOLDER = re.compile(r"^(\.\.\.|…|<[^>]*>|[A-Z][A-Z0-9_]*)$")  # ..., <x>, STAGE: a value to fill in


def command_argv(line: str) -> tuple[str, list[str]] | None:
    """The parser to use and the arguments after the entry point, or None when the line runs something else."""
    line = re.sub(r"(^|\s)#.*$", "", line)  # a trailing comment (never inside our commands' quoted values here)
    line = _unbracket(line)
    try:
        words = shlex.split(line)
    except ValueError:
        return None
    for prefix, which in ENTRY_POINTS.items():
        for i in range(len(words) - len(prefix) + 1):
            if tuple(words[i : i + len(prefix)]) == prefix or (
                prefix[0] == "python" and words[i].endswith("python") and tuple(words[i + 1 : i + 2]) == prefix[1:]
            ):
                rest = words[i + len(prefix) :]
                cut = next((j for j, w in enumerate(rest) if w in ("|", "&&", ";", ">", "2>&1", "||")), len(rest))
                # A|B alternatives: the first (a JSON or quoted value keeps its bars).
                rest = [w.split("|", 1)[0] if "|" in w and not w.startswith(("{", "[", "'")) else w for w in rest[:cut]]
                if which == "cli" and rest[:1] == ["local-arm"]:
                    return "local-arm", rest[1:]
                return which, rest
    return None


def _parser(which: str) -> argparse.ArgumentParser:
    if which == "cli":
        from orchestrator.cli import build_parser

        return build_parser()
    if which == "worker":
        import worker

        return worker.build_parser()
    from local_arm.cli import build_parser as local_arm_parser

    return local_arm_parser()


def _subcommand(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and argv and argv[0] in action.choices:
            return action.choices[argv[0]]
    return parser


def parse_failure(which: str, argv: list[str]) -> str | None:
    """argparse's complaint about ``argv`` (None: it parses). Notation is filled in first: a placeholder after a
    flag becomes a value (a flag with choices: its first); a bare ``...``/``…`` elides arguments, so then the
    required ones are filled in."""
    parser = _parser(which)
    command = _subcommand(parser, argv)
    filled: list[str] = []
    elided = False
    for word in argv:
        action = command._option_string_actions.get(filled[-1]) if filled else None
        meant_as_choice = bool(action and action.choices and difflib.get_close_matches(word, list(action.choices)))
        if PLACEHOLDER.match(word) and action is not None and action.nargs != 0 and not meant_as_choice:
            filled.append(str(action.choices[0]) if action.choices else "x")  # type: ignore[index]
        elif word in ("...", "…"):
            elided = True
        else:
            filled.append(word)
    if elided:  # the elided arguments hold whatever is required (so an unknown flag is still noticed)
        for action in command._actions:
            if action.required and not set(action.option_strings) & set(filled):
                if action.option_strings:
                    filled += [action.option_strings[0], "x"]
                elif command is not parser:
                    filled.insert(1, "x")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            parser.parse_args(filled)
        except SystemExit as exc:
            if exc.code not in (0, None):
                return err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else f"exit {exc.code}"
    return None


def documented_commands() -> list[tuple[str, int, str, list[str]]]:
    found = []
    for path in DOCS:
        for number, line in fenced_shell_lines(path):
            parsed = command_argv(line)
            if parsed is not None:
                found.append((f"{path.relative_to(ROOT)}:{number}", number, parsed[0], parsed[1]))
    return found


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
