"""Check targets: ``{outputs.NAME.field}`` placeholders, URL and port rules, and redaction for anything recorded.

Placeholders are checked twice: before the deployment against the output names the template declares (so a typo
costs nothing), and after it against the outputs ARM actually returned.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

# `{outputs.web.url}`; `{{` and `}}` are literal braces.
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_SEGMENT = re.compile(r"[A-Za-z0-9_$-]+")


class TargetError(ValueError):
    """A target text that cannot be used; the message says what is wrong (the caller names the input)."""


def output_references(text: str) -> list[list[str]]:
    """Every ``{outputs.a.b}`` in ``text`` as its path ``['a', 'b']``, in order."""
    refs: list[list[str]] = []
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        if token in ("{", "}"):
            raise TargetError(
                f"'{text}' has an unmatched '{token}'; write {{outputs.NAME}} for a deployment output, "
                "or double the brace ('{{' or '}}') for a literal one"
            )
        inner = (match.group(1) or "").strip()
        parts = inner.split(".")
        if len(parts) < 2 or parts[0] != "outputs":
            raise TargetError(
                f"'{text}' has the placeholder '{token}'; only {{outputs.NAME}} (or {{outputs.NAME.field}}) "
                "is supported; double the brace ('{{') for a literal one"
            )
        path = parts[1:]
        bad = [p for p in path if not _SEGMENT.fullmatch(p)]
        if bad:
            raise TargetError(
                f"'{text}' has the placeholder '{token}' whose part '{bad[0]}' is not a name; "
                "write {outputs.NAME} or {outputs.NAME.field}"
            )
        refs.append(path)
    return refs


def has_placeholders(text: str) -> bool:
    return any(True for _ in output_references(text))


def check_declared(text: str, declared: Mapping[str, str | None]) -> None:
    """Raise when ``text`` refers to an output the template does not declare (names compare as ARM does:
    ignoring case), or to a field of an output whose declared type is not an object."""
    lowered = {name.lower(): name for name in declared}
    for path in output_references(text):
        name = path[0]
        if name.lower() not in lowered:
            close = difflib.get_close_matches(name, list(declared), n=1)
            if close:
                hint = f"Did you mean '{close[0]}'?"
            elif declared:
                hint = "It declares: " + ", ".join(sorted(declared)) + "."
            else:
                hint = "It declares no outputs; add one to the template or write the target literally."
            raise TargetError(f"'{text}' uses the output '{name}', which the template does not declare. {hint}")
        declared_type = declared[lowered[name.lower()]]
        if declared_type and declared_type.lower() in ("securestring", "secureobject"):
            raise TargetError(
                f"'{text}' uses the output '{name}', which is declared {declared_type}: secure outputs are masked "
                "after deployment and never reach health checks; expose the non-secret part as its own output"
            )
        if len(path) > 1 and declared_type and declared_type.lower() not in ("object", "array"):
            raise TargetError(
                f"'{text}' reads the field '{'.'.join(path[1:])}' of the output '{name}', but that output is "
                f"declared as {declared_type}, which has no fields; write {{outputs.{name}}}"
            )
        if len(path) == 1 and declared_type and declared_type.lower() in ("object", "array"):
            # Known before deploying: a whole object or array cannot be a host, a port or a URL part.
            example = "field" if declared_type.lower() == "object" else "0"
            raise TargetError(
                f"'{text}' uses the output '{name}' as a whole, but it is declared as {declared_type}; "
                f"name the part to use, e.g. {{outputs.{name}.{example}}}"
            )


def check_port_declared(text: str, declared: Mapping[str, str | None]) -> None:
    """A port that is one placeholder must name an output that can hold a number (int, or string)."""
    lowered = {name.lower(): name for name in declared}
    refs = output_references(text)
    if len(refs) == 1 and len(refs[0]) == 1 and refs[0][0].lower() in lowered:
        declared_type = declared[lowered[refs[0][0].lower()]]
        if declared_type and declared_type.lower() == "bool":
            raise TargetError(
                f"the port '{text}' uses the output '{refs[0][0]}', which is declared bool; use an int output"
            )


def declared_outputs(template: Mapping[str, Any]) -> dict[str, str | None]:
    """The output names of an ARM template with their declared types, for ``check_declared``."""
    outputs = template.get("outputs") or {}
    if not isinstance(outputs, Mapping):
        return {}
    result: dict[str, str | None] = {}
    for name, spec in outputs.items():
        kind = spec.get("type") if isinstance(spec, Mapping) else None
        result[str(name)] = str(kind) if isinstance(kind, str) else None
    return result


_BICEP_OUTPUT = re.compile(
    r"^[ \t]*((?:@[A-Za-z_][\w.]*\([^\n]*?\)[ \t]*)*)"  # decorators before `output` on the same line
    r"output[ \t]+([A-Za-z_][A-Za-z0-9_]*)[ \t]+([A-Za-z_][A-Za-z0-9_.]*)"
)
_BICEP_DECORATOR_LINE = re.compile(r"^[ \t]*@([A-Za-z_][\w.]*)")
_BICEP_TYPES = {"string": "string", "int": "int", "bool": "bool", "object": "object", "array": "array"}
_BICEP_SECURE = {"string": "securestring", "object": "secureObject"}


def declared_outputs_from_bicep(source: str) -> dict[str, str | None]:
    """The ``output NAME TYPE = ...`` declarations of a Bicep file (its own, not its modules'), so declarations can
    be checked before the worker compiles it. User-defined and resource types map to None (fields not checked).
    ``@secure()`` — on the line above or before ``output`` — makes ``securestring``/``secureObject``; text inside
    comments and strings (``'...'``, ``\'\'\'...\'\'\'``) is not read as declarations."""
    outputs: dict[str, str | None] = {}
    secure_pending = False
    for line in _bicep_code(source).splitlines():
        match = _BICEP_OUTPUT.match(line)
        if match:
            decorators, name, kind = match.group(1), match.group(2), match.group(3).lower()
            secure = secure_pending or "@secure(" in decorators.replace(" ", "").lower()
            declared = _BICEP_SECURE.get(kind) if secure else None
            outputs[name] = declared or _BICEP_TYPES.get(kind)
            secure_pending = False
            continue
        decorator = _BICEP_DECORATOR_LINE.match(line)
        if decorator:
            secure_pending = secure_pending or decorator.group(1).lower() in ("secure", "sys.secure")
        elif line.strip():
            secure_pending = False  # a decorator belongs to the declaration right after it
    return outputs


def _bicep_code(source: str) -> str:
    """``source`` with comments and string contents blanked (newlines kept), so only code is matched. Strings may
    hold ``${...}`` interpolations, which are code again (and may hold strings)."""
    out: list[str] = []
    i, n = 0, len(source)
    stack: list[str] = []  # "'" inside a string; "{" inside an interpolation
    while i < n:
        ch = source[i]
        top = stack[-1] if stack else None
        if top == "'":
            if ch == "\\" and i + 1 < n:
                out.append("  " if source[i + 1] != "\n" else " \n")
                i += 2
                continue
            if ch == "'":
                stack.pop()
                out.append("'")
            elif source.startswith("${", i):
                stack.append("{")
                out.append("  ")
                i += 2
                continue
            else:
                out.append("\n" if ch == "\n" else " ")
            i += 1
            continue
        if source.startswith("'''", i):  # a multi-line string: no escapes, no interpolation
            end = source.find("'''", i + 3)
            end = n if end < 0 else end + 3
            out.append("".join("\n" if c == "\n" else " " for c in source[i:end]))
            i = end
            continue
        if source.startswith("//", i):
            end = source.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
            continue
        if source.startswith("/*", i):
            end = source.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append("".join("\n" if c == "\n" else " " for c in source[i:end]))
            i = end
            continue
        if ch == "'":
            stack.append("'")
        elif ch == "{" and top == "{":
            stack.append("{")
        elif ch == "}" and top == "{":
            stack.pop()
        out.append(ch)
        i += 1
    return "".join(out)


def output_values(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """ARM returns outputs as ``{"name": {"type": "String", "value": ...}}``; give ``{"name": value}``.
    Already-plain values pass through."""
    plain: dict[str, Any] = {}
    for name, entry in outputs.items():
        if isinstance(entry, Mapping) and "value" in entry and set(entry) <= {"type", "value"}:
            plain[name] = entry["value"]
        else:
            plain[name] = entry
    return plain


def substitute(text: str, outputs: Mapping[str, Any]) -> str:
    """``text`` with every placeholder replaced by the output's value; ``outputs`` are plain values."""
    output_references(text)  # raises on malformed placeholders
    lowered = {name.lower(): name for name in outputs}

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        path = (match.group(1) or "").strip().split(".")[1:]
        key = path[0] if path[0] in outputs else lowered.get(path[0].lower())
        if key is None:
            raise TargetError(f"the deployment returned no output '{path[0]}' (it returned: {_names(outputs)})")
        value: Any = outputs[key]
        walked = [key]
        for part in path[1:]:
            value = _field(value, part, walked)
            walked.append(part)
        return _scalar_text(value, ".".join(walked))

    return _TOKEN.sub(replace, text)


def _names(outputs: Mapping[str, Any]) -> str:
    return ", ".join(sorted(outputs)) or "none"


def _field(value: Any, part: str, walked: list[str]) -> Any:
    where = "outputs." + ".".join(walked)
    if isinstance(value, Mapping):
        if part in value:
            return value[part]
        for key in value:
            if str(key).lower() == part.lower():
                return value[key]
        raise TargetError(f"the output {where} has no field '{part}' (it has: {', '.join(map(str, value)) or 'none'})")
    if isinstance(value, list):
        if part.isdigit() and int(part) < len(value):
            return value[int(part)]
        raise TargetError(f"the output {where} is an array of {len(value)}; '{part}' is not an index in it")
    raise TargetError(f"the output {where} is {_kind(value)}, which has no field '{part}'")


def _scalar_text(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if value is None:
        raise TargetError(f"the output outputs.{where} is null")
    raise TargetError(
        f"the output outputs.{where} is {_kind(value)}; name one of its fields, e.g. {{outputs.{where}.x}}"
    )


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    return "a number" if isinstance(value, int | float) else type(value).__name__


# --------------------------------------------------------------------------------------------------- URLs, ports


def validate_url(url: str) -> SplitResult:
    """A usable http(s) URL, or ``TargetError`` saying what is wrong."""
    if not url.strip():
        raise TargetError("the URL is empty")
    if any(c.isspace() for c in url):
        raise TargetError(f"the URL '{redact_url(url)}' contains whitespace; percent-encode it (%20)")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        shown = f"'{parts.scheme}'" if parts.scheme else "none"
        raise TargetError(
            f"the URL '{redact_url(url)}' is malformed: its scheme is {shown}; write http://HOST/PATH or https://HOST/PATH"
        )
    if not parts.hostname:
        raise TargetError(f"the URL '{redact_url(url)}' is malformed: it has no host; write {parts.scheme}://HOST/PATH")
    if "@" in parts.netloc:
        # Not sent as Basic authentication: a password in a URL ends up in logs, shell history and process lists.
        raise TargetError(
            f"the URL '{redact_url(url)}' holds credentials (user:password@), which a health check does not send; "
            "remove them and give a header instead, e.g. header=Authorization:Basic <base64 of user:password>"
        )
    try:
        port = parts.port
    except ValueError:
        raise TargetError(
            f"the URL '{redact_url(url)}' is malformed: its port is not a number from 1 to 65535"
        ) from None
    if port is not None:
        validate_port(port)
    return parts


_RESOURCE_ID = re.compile(
    r"/subscriptions/[^/]+(/resourceGroups/[^/]+)?/providers/[A-Za-z0-9.]+(/[^/]+/[^/]+)+", re.IGNORECASE
)


def validate_resource_id(resource_id: str) -> str:
    """An ARM resource id (``/subscriptions/S/resourceGroups/G/providers/NS/type/name[/type/name]...``), or
    ``TargetError``. Ids are paths the worker requests with its ARM credential, so nothing that could step out of
    them (``..``, a query, an escape) is accepted."""
    text = resource_id.strip()
    bad = next((c for c in ("..", "?", "#", "%", "\\", "//") if c in text), None)
    if bad is None and any(c.isspace() for c in text):
        bad = "whitespace"
    if bad is not None or not _RESOURCE_ID.fullmatch(text):
        why = f"it contains '{bad}'" if bad is not None else "it is not shaped like one"
        raise TargetError(
            f"'{text}' is not an ARM resource id ({why}); write "
            "/subscriptions/SUB/resourceGroups/RG/providers/NAMESPACE/TYPE/NAME, or {outputs.NAME} for an id output"
        )
    return text


def validate_port(port: int | str) -> int:
    try:
        number = int(str(port).strip())
    except ValueError:
        raise TargetError(f"the port '{port}' is not a number; give a port from 1 to 65535") from None
    if not 1 <= number <= 65535:
        raise TargetError(f"the port {number} is out of range; give a port from 1 to 65535")
    return number


def placeholder_probe(text: str) -> str:
    """``text`` with placeholders replaced by stand-ins, to check its shape before the outputs exist: a port
    stand-in after ``host:``, a host-name-like word elsewhere."""

    def stand_in(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        before, after = text[: match.start()], text[match.end() :]
        if before.endswith(":") and not before.endswith("://") and (not after or after[0] in "/?#"):
            return "1"
        return "output-value"

    return _TOKEN.sub(stand_in, text)


def redact_url(url: str) -> str:
    """The URL with its query, fragment and any user:password replaced, fit for logs, history and errors
    (query strings carry SAS tokens and API keys)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "<redacted>@" + netloc.rpartition("@")[2]
    query = "<redacted>" if parts.query else ""
    fragment = "<redacted>" if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


_URL_QUERY = re.compile(r"(https?://[^\s?#'\"]*)[?#][^\s'\"]*", re.IGNORECASE)
_URL_USERINFO = re.compile(r"(https?://)[^\s/@'\"]+@", re.IGNORECASE)


def redact_urls_in(text: str) -> str:
    """``text`` with the query string and credentials of every http(s) URL in it redacted."""
    text = _URL_USERINFO.sub(r"\1<redacted>@", text)
    return _URL_QUERY.sub(r"\1?<redacted>", text)
