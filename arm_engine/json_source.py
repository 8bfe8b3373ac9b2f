"""JSON text → value, the way ARM reads templates: comments allowed, a UTF-8 BOM tolerated, and a syntax error
reported as a ``TemplateError(InvalidJson)`` with the line and column in the user's file."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from .errors import IssueCode, TemplateError, TemplateIssue


def blank_comments(text: str) -> str:
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
    duplicate = duplicate_property(text)
    if duplicate is not None:
        name, line, column = duplicate
        raise TemplateError(
            TemplateIssue(
                IssueCode.INVALID_JSON,
                f"the {what} names the property '{name}' twice in one object (line {line}, column {column}); ARM "
                "rejects duplicate property names — keep one",
                source=source,
                line=line,
                column=column,
            )
        )
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        pass
    try:
        return json.loads(blank_comments(text), parse_constant=_reject_constant)
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


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen.add(key)
    return dict(pairs)


def duplicate_property(text: str) -> tuple[str, int, int] | None:
    """(property name, line, column of its second occurrence) for the first object in ``text`` that names a
    property twice — ARM rejects such a document, while Python's json keeps the last value silently. None when
    there is none (or ``text`` is not JSON: that is reported elsewhere)."""
    source = blank_comments(text[1:] if text.startswith("\ufeff") else text)
    try:
        json.loads(source, object_pairs_hook=_no_duplicates)
    except _DuplicateKey:
        pass
    except (ValueError, RecursionError):
        return None
    else:
        return None
    decoder = json.JSONDecoder()
    n = len(source)

    def where(offset: int) -> tuple[int, int]:
        line = source.count("\n", 0, offset) + 1
        return line, offset - (source.rfind("\n", 0, offset) + 1) + 1

    def skip(i: int) -> int:
        while i < n and source[i] in " \t\r\n":
            i += 1
        return i

    found: list[tuple[str, int, int]] = []

    def value(i: int) -> int:
        i = skip(i)
        ch = source[i]
        if ch == "{":
            seen: set[str] = set()
            i = skip(i + 1)
            if source[i] == "}":
                return i + 1
            while True:
                i = skip(i)
                start = i
                key, i = decoder.raw_decode(source, i)
                if key in seen and not found:
                    found.append((str(key), *where(start)))
                seen.add(key)
                i = skip(i)
                i = value(i + 1)
                i = skip(i)
                if source[i] == ",":
                    i += 1
                    continue
                return i + 1
        if ch == "[":
            i = skip(i + 1)
            if source[i] == "]":
                return i + 1
            while True:
                i = skip(value(i))
                if source[i] == ",":
                    i += 1
                    continue
                return i + 1
        _, end = decoder.raw_decode(source, i)
        return int(end)

    with contextlib.suppress(ValueError, IndexError, RecursionError):
        value(0)
    return found[0] if found else None


def _path_key(path: str, key: str) -> str:
    if key.isidentifier():
        return f"{path}.{key}" if path else key
    return f"{path}['{key}']"


def value_positions(text: str) -> dict[str, tuple[int, int]]:
    """JSON path (``resources[2].properties.name``, the engine's path format) → (line, column) where that value
    starts in ``text``. Used to point an error at the user's file; an empty dict if ``text`` is not JSON."""
    source = blank_comments(text[1:] if text.startswith("\ufeff") else text)
    decoder = json.JSONDecoder()
    positions: dict[str, tuple[int, int]] = {}
    line_starts = [0]
    for i, ch in enumerate(source):
        if ch == "\n":
            line_starts.append(i + 1)

    def where(offset: int) -> tuple[int, int]:
        lo, hi = 0, len(line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if line_starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1, offset - line_starts[lo] + 1

    n = len(source)

    def skip(i: int) -> int:
        while i < n and source[i] in " \t\r\n":
            i += 1
        return i

    def value(i: int, path: str) -> int:
        i = skip(i)
        positions[path] = where(i)
        if i >= n:
            raise ValueError("end of text")
        ch = source[i]
        if ch == "{":
            i = skip(i + 1)
            if i < n and source[i] == "}":
                return i + 1
            while True:
                i = skip(i)
                key, i = decoder.raw_decode(source, i)
                i = skip(i)
                if source[i] != ":":
                    raise ValueError("expected ':'")
                i = value(i + 1, _path_key(path, str(key)))
                i = skip(i)
                if source[i] == ",":
                    i += 1
                    continue
                if source[i] == "}":
                    return i + 1
                raise ValueError("expected ',' or '}'")
        if ch == "[":
            i = skip(i + 1)
            if i < n and source[i] == "]":
                return i + 1
            index = 0
            while True:
                i = value(i, f"{path}[{index}]")
                index += 1
                i = skip(i)
                if source[i] == ",":
                    i += 1
                    continue
                if source[i] == "]":
                    return i + 1
                raise ValueError("expected ',' or ']'")
        _, end = decoder.raw_decode(source, i)
        return int(end)

    try:
        value(0, "")
    except (ValueError, IndexError, RecursionError):
        return positions
    return positions


def locate(positions: dict[str, tuple[int, int]], path: str) -> tuple[int, int] | None:
    """The position of ``path``, or of its nearest enclosing value that is in the file (evaluated copies and
    expression results have paths the file does not)."""
    while path:
        if path in positions:
            return positions[path]
        cut = max(path.rfind("."), path.rfind("["))
        if cut <= 0:
            break
        path = path[:cut]
    return positions.get(path)
