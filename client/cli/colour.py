"""Colour on a terminal, as az prints what-if: green ``+ Create``, red ``- Delete``, purple ``~ Modify``, blue
``! Deploy``, grey ``= NoChange``/``* Ignore``/``x NoEffect``; stage lines in cyan, COMPLETED green, FAILED red.

Colour is used only when the stream is a terminal, ``NO_COLOR`` is unset or empty (https://no-color.org) and
``--no-color`` was not given; ``FORCE_COLOR`` (non-empty) turns it on anywhere (e.g. a CI log that renders ANSI).
"""

from __future__ import annotations

import os
import re
from typing import Any, TextIO

RESET = "\033[0m"
BOLD = "\033[1m"
RED = "\033[31m"
GREEN = "\033[32m"
YELLOW = "\033[33m"
BLUE = "\033[34m"
MAGENTA = "\033[35m"
CYAN = "\033[36m"
GREY = "\033[90m"

_SYMBOLS = {"+": GREEN, "-": RED, "~": MAGENTA, "!": BLUE, "=": GREY, "*": GREY, "x": GREY}
_PLAN_LINE = re.compile(r"^(\s+)([-+~!=*x])( .*)$")
_STAGE_COLOURS = {"COMPLETED": GREEN, "FAILED": RED, "ROLLED_BACK": YELLOW, "AWAITING_CONFIRMATION": YELLOW}

_disabled_by_flag = False


def add_colour_argument(parser: Any) -> None:
    parser.add_argument(
        "--no-color",
        "--no-colour",
        dest="no_color",
        action="store_true",
        help="never colour the output (also: NO_COLOR=1; colour is only used on a terminal)",
    )


def configure(args: Any) -> None:
    """Take ``--no-color`` into account for the rest of this command."""
    global _disabled_by_flag
    _disabled_by_flag = bool(getattr(args, "no_color", False))


def enabled(stream: TextIO) -> bool:
    if _disabled_by_flag or os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def paint(text: str, colour: str, stream: TextIO) -> str:
    return f"{colour}{text}{RESET}" if enabled(stream) else text


def plan(text: str, stream: TextIO) -> str:
    """A rendered what-if plan, each change line in its change type's colour."""
    if not enabled(stream):
        return text
    lines = []
    for line in text.split("\n"):
        match = _PLAN_LINE.match(line)
        if match:
            indent, symbol, rest = match.groups()
            line = f"{indent}{_SYMBOLS[symbol]}{symbol}{rest}{RESET}"
        elif line.startswith("Resource changes:"):
            line = f"{BOLD}{line}{RESET}"
        lines.append(line)
    return "\n".join(lines)


def stage(name: str, stream: TextIO) -> str:
    """``[STAGE]`` in the stage's colour."""
    return paint(f"[{name}]", _STAGE_COLOURS.get(name, CYAN), stream)
