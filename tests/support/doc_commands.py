"""Command lines shown in README.md and docs/: extracted from fenced shell blocks and parsed with the CLI's own
parsers (tests/ops/test_docs_commands.py and the tests that run documented hints)."""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

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
                cut = next((j for j, w in enumerate(rest) if w in ("|", "&&", ";", ">", "2>&1", "||", "&")), len(rest))
                # A|B alternatives: the first (a JSON or quoted value keeps its bars).
                rest = [w.split("|", 1)[0] if "|" in w and not w.startswith(("{", "[", "'")) else w for w in rest[:cut]]
                if which == "cli" and rest[:1] == ["local-arm"]:
                    return "local-arm", rest[1:]
                return which, rest
    return None


def _parser(which: str) -> argparse.ArgumentParser:
    if which == "cli":
        from client.cli import build_parser

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
