"""JSON text → value, the way ARM reads templates: comments allowed, a UTF-8 BOM tolerated, and a syntax error
reported as a ``TemplateError(InvalidJson)`` with the line and column in the user's file."""

from __future__ import annotations

import json
from typing import Any

from .errors import IssueCode, TemplateError, TemplateIssue


def _blank_comments(text: str) -> str:
    """Replace ``//`` and ``/* */`` comments outside strings with spaces, keeping newlines, so that positions
    of later errors still point into the original text."""
    if "/" not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    in_string = False
    while i < n:
        ch = text[i]
        if in_string:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if ch == '"':
                in_string = False
            i += 1
        elif ch == '"':
            in_string = True
            out.append(ch)
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end == -1 else end
            out.append(" " * (end - i))
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end == -1 else end + 2
            out.append("".join(c if c == "\n" else " " for c in text[i:end]))
            i = end
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(text: str | bytes, *, source: str | None = None, what: str = "template") -> Any:
    """Parse ``text`` (a template or parameters document). ``source`` names the file in error messages."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise TemplateError(
                TemplateIssue(
                    IssueCode.INVALID_JSON,
                    f"the {what} is not UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8 JSON",
                    source=source,
                )
            ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        pass
    try:
        return json.loads(_blank_comments(text), parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise TemplateError(
            TemplateIssue(
                IssueCode.INVALID_JSON,
                f"the {what} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno} "
                "(a trailing comma or a missing quote is the usual cause)",
                source=source,
                line=exc.lineno,
                column=exc.colno,
            )
        ) from None
    except ValueError as exc:
        raise TemplateError(
            TemplateIssue(IssueCode.INVALID_JSON, f"the {what} is not valid JSON: {exc}", source=source)
        ) from None
    except RecursionError:
        raise TemplateError(
            TemplateIssue(IssueCode.INVALID_JSON, f"the {what} nests too deeply to read", source=source)
        ) from None
