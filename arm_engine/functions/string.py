"""String functions: format (.NET composite formatting), the base64/URI/dataUri codecs, search functions
(indexOf, startsWith, endsWith are case-insensitive in ARM; contains and replace are not), and the
deterministic name generators uniqueString and guid."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import urllib.parse
import uuid
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from ..errors import IssueCode
from ..unique import arm_guid, unique_string
from ._core import (
    FunctionError,
    Invocation,
    arg_int,
    arg_list,
    arg_str,
    arm_function,
    format_float,
    is_int,
    is_number,
    to_arm_string,
    type_name,
)
from .object import parse_json


@arm_function("string", 1, 1)
def string(inv: Invocation, args: list[Any]) -> str:
    return to_arm_string(args[0])


@arm_function("toLower", 1, 1)
def to_lower(inv: Invocation, args: list[Any]) -> str:
    return arg_str(inv, args, 0).lower()


@arm_function("toUpper", 1, 1)
def to_upper(inv: Invocation, args: list[Any]) -> str:
    return arg_str(inv, args, 0).upper()


@arm_function("trim", 1, 1)
def trim(inv: Invocation, args: list[Any]) -> str:
    return arg_str(inv, args, 0).strip()


@arm_function("startsWith", 2, 2)
def starts_with(inv: Invocation, args: list[Any]) -> bool:
    return arg_str(inv, args, 0).lower().startswith(arg_str(inv, args, 1).lower())


@arm_function("endsWith", 2, 2)
def ends_with(inv: Invocation, args: list[Any]) -> bool:
    return arg_str(inv, args, 0).lower().endswith(arg_str(inv, args, 1).lower())


@arm_function("replace", 3, 3)
def replace(inv: Invocation, args: list[Any]) -> str:
    text, old, new = arg_str(inv, args, 0), arg_str(inv, args, 1), arg_str(inv, args, 2)
    if not old:
        raise FunctionError(IssueCode.INVALID_VALUE, "the string to replace must not be empty")
    return text.replace(old, new)


@arm_function("split", 2, 2)
def split(inv: Invocation, args: list[Any]) -> list[str]:
    text = arg_str(inv, args, 0)
    delimiters = args[1]
    if isinstance(delimiters, str):
        delimiters = [delimiters]
    if not isinstance(delimiters, list) or not all(isinstance(d, str) for d in delimiters):
        raise FunctionError(IssueCode.TYPE_ERROR, "the delimiter must be a string or an array of strings")
    delimiters = [d for d in delimiters if d]
    if not delimiters:
        return [text]
    pattern = "|".join(re.escape(d) for d in sorted(delimiters, key=len, reverse=True))
    return re.split(pattern, text)


@arm_function("join", 2, 2)
def join(inv: Invocation, args: list[Any]) -> str:
    items = arg_list(inv, args, 0)
    delimiter = arg_str(inv, args, 1)
    for item in items:
        if isinstance(item, (list, dict)):
            raise FunctionError(
                IssueCode.TYPE_ERROR, f"join() needs strings, integers or booleans, found {type_name(item)}"
            )
    return delimiter.join(to_arm_string(i) for i in items)


@arm_function("substring", 1, 3)
def substring(inv: Invocation, args: list[Any]) -> str:
    text = arg_str(inv, args, 0)
    start = arg_int(inv, args, 1) if len(args) > 1 else 0
    if not 0 <= start <= len(text):
        raise FunctionError(
            IssueCode.INDEX_OUT_OF_RANGE, f"the start index {start} is outside the string (length {len(text)})"
        )
    if len(args) < 3:
        return text[start:]
    count = arg_int(inv, args, 2)
    if count < 0 or start + count > len(text):
        raise FunctionError(
            IssueCode.INDEX_OUT_OF_RANGE,
            f"the length {count} from index {start} runs past the end of the string (length {len(text)})",
        )
    return text[start : start + count]


@arm_function("padLeft", 2, 3)
def pad_left(inv: Invocation, args: list[Any]) -> str:
    value = args[0]
    if not (isinstance(value, str) or is_int(value)):
        raise FunctionError(IssueCode.TYPE_ERROR, f"padLeft() pads a string or an integer, got {type_name(value)}")
    text = to_arm_string(value)
    width = arg_int(inv, args, 1)
    pad = arg_str(inv, args, 2) if len(args) > 2 else " "
    if len(pad) != 1:
        raise FunctionError(IssueCode.INVALID_VALUE, "the padding must be exactly one character")
    if width > 16 * 1024:
        raise FunctionError(IssueCode.INVALID_VALUE, f"the total length {width} is too large")
    return text.rjust(width, pad)


@arm_function("base64", 1, 1)
def base64_(inv: Invocation, args: list[Any]) -> str:
    return base64.b64encode(arg_str(inv, args, 0).encode("utf-8")).decode("ascii")


def _b64decode(inv: Invocation, text: str) -> str:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise FunctionError(IssueCode.INVALID_VALUE, f"{inv.name}(): the value is not valid base64 text") from None


@arm_function("base64ToString", 1, 1)
def base64_to_string(inv: Invocation, args: list[Any]) -> str:
    return _b64decode(inv, arg_str(inv, args, 0))


@arm_function("base64ToJson", 1, 1)
def base64_to_json(inv: Invocation, args: list[Any]) -> Any:
    return parse_json(_b64decode(inv, arg_str(inv, args, 0)))


@arm_function("dataUri", 1, 1)
def data_uri(inv: Invocation, args: list[Any]) -> str:
    encoded = base64.b64encode(to_arm_string(args[0]).encode("utf-8")).decode("ascii")
    return f"data:text/plain;charset=utf-8;base64,{encoded}"  # what the engine returns (Bicep B1 vectors)


@arm_function("dataUriToString", 1, 1)
def data_uri_to_string(inv: Invocation, args: list[Any]) -> str:
    text = arg_str(inv, args, 0)
    if not text.startswith("data:") or "," not in text:
        raise FunctionError(IssueCode.INVALID_VALUE, "the value is not a data URI ('data:[<mediatype>][;base64],...')")
    header, payload = text[5:].split(",", 1)
    if header.lower().split(";")[-1] == "base64":
        return _b64decode(inv, payload)
    return urllib.parse.unquote(payload)


@arm_function("uriComponent", 1, 1)
def uri_component(inv: Invocation, args: list[Any]) -> str:
    return urllib.parse.quote(arg_str(inv, args, 0), safe="-_.~")


@arm_function("uriComponentToString", 1, 1)
def uri_component_to_string(inv: Invocation, args: list[Any]) -> str:
    return urllib.parse.unquote(arg_str(inv, args, 0))


@arm_function("uri", 2, 2)
def uri(inv: Invocation, args: list[Any]) -> str:
    """RFC 3986 resolution, as documented: a trailing slash keeps the base's last segment, otherwise it is
    replaced; a base with no path gets one."""
    base, relative = arg_str(inv, args, 0), arg_str(inv, args, 1)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", relative):
        return relative
    if "://" not in base:
        raise FunctionError(IssueCode.INVALID_VALUE, f"the base URI {base!r} is not an absolute URI")
    if base.split("://", 1)[0].lower() in urllib.parse.uses_relative:
        return urllib.parse.urljoin(base, relative)
    if relative.startswith("/"):
        relative = relative[1:]
    if base.endswith("/"):
        return base + relative
    authority_and_path = base.split("://", 1)[1]
    if "/" not in authority_and_path:
        return f"{base}/{relative}"
    return base[: base.rfind("/") + 1] + relative


@arm_function("parseUri", 1, 1)
def parse_uri(inv: Invocation, args: list[Any]) -> dict[str, Any]:
    text = arg_str(inv, args, 0)
    parts = urllib.parse.urlsplit(text)
    if not parts.scheme or not parts.netloc:
        raise FunctionError(IssueCode.INVALID_VALUE, f"{text!r} is not an absolute URI")
    result: dict[str, Any] = {"scheme": parts.scheme, "host": parts.hostname or ""}
    try:
        port = parts.port
    except ValueError:
        raise FunctionError(IssueCode.INVALID_VALUE, f"{text!r} has an invalid port") from None
    if port is None:
        port = {"http": 80, "https": 443}.get(parts.scheme.lower())
    if port is not None:
        result["port"] = port
    result["path"] = parts.path or "/"
    if parts.query:
        result["query"] = "?" + parts.query
    return result


@arm_function("buildUri", 1, 1)
def build_uri(inv: Invocation, args: list[Any]) -> str:
    value = args[0]
    if not isinstance(value, dict):
        raise FunctionError(
            IssueCode.TYPE_ERROR, f"buildUri() needs an object like parseUri() returns, got {type_name(value)}"
        )
    scheme = str(value.get("scheme") or "https")
    host = str(value.get("host") or "")
    port = value.get("port")
    default_port = {"http": 80, "https": 443}.get(scheme.lower())
    netloc = host if port in (None, default_port) else f"{host}:{port}"
    path = str(value.get("path") or "")
    if path and not path.startswith("/"):
        path = "/" + path
    query = str(value.get("query") or "")
    if query and not query.startswith("?"):
        query = "?" + query
    return f"{scheme}://{netloc}{path}{query}"


@arm_function("uniqueString", 1, None)
def unique_string_(inv: Invocation, args: list[Any]) -> str:
    return unique_string(*(arg_str(inv, args, i) for i in range(len(args))))


@arm_function("guid", 1, None)
def guid(inv: Invocation, args: list[Any]) -> str:
    return arm_guid(*(arg_str(inv, args, i) for i in range(len(args))))


@arm_function("newGuid", 0, 0)
def new_guid(inv: Invocation, args: list[Any]) -> str:
    if not inv.ctx.allow_runtime_functions:
        raise FunctionError(IssueCode.FUNCTION_NOT_ALLOWED, "newGuid() is allowed only in a parameter's defaultValue")
    scope = inv.ctx.scope
    if scope.new_guid_seed is None:
        return str(uuid.uuid4())
    # Evaluated once per deployment, like utcNow(): the deployment's secret seed, the (nested) deployment's name and
    # where the call stands make the value, so the deployment's preflight and run agree and a rollback reuses the
    # earlier deployment's values.
    inv.evaluation.new_guids += 1
    where = f"{scope.deployment_name}|{inv.evaluation.path}|{inv.evaluation.new_guids}"
    digest = hmac.new(scope.new_guid_seed.encode(), where.encode(), hashlib.sha256).hexdigest()
    return str(uuid.UUID(digest[:32], version=4))


# ------------------------------------------------------------------ format()


@arm_function("format", 1, None)
def format_(inv: Invocation, args: list[Any]) -> str:
    return dotnet_format(arg_str(inv, args, 0), args[1:])


_FORMAT_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def dotnet_format(template: str, values: list[Any]) -> str:
    """.NET String.Format: {index[,alignment][:formatString]}, with {{ and }} as literal braces."""
    out: list[str] = []
    pos = 0
    for m in _FORMAT_TOKEN.finditer(template):
        out.append(template[pos : m.start()])
        pos = m.end()
        token = m.group()
        if token == "{{":
            out.append("{")
        elif token == "}}":
            out.append("}")
        elif m.group(1) is not None:
            out.append(_format_item(template, m.group(1), values))
        else:
            what = "an unclosed '{'" if token == "{" else "an unmatched '}'"
            raise FunctionError(IssueCode.INVALID_VALUE, f"the format string {template!r} has {what}")
    out.append(template[pos:])
    return "".join(out)


_ITEM = re.compile(r"^\s*(\d+)\s*(?:,\s*(-?\d+)\s*)?(?::(.*))?$", re.DOTALL)


def _format_item(template: str, item: str, values: list[Any]) -> str:
    m = _ITEM.match(item)
    if m is None:
        raise FunctionError(IssueCode.INVALID_VALUE, f"the format item {{{item}}} in {template!r} is invalid")
    index = int(m.group(1))
    if index >= len(values):
        raise FunctionError(
            IssueCode.INDEX_OUT_OF_RANGE,
            f"the format string {template!r} refers to argument {{{index}}} but only {len(values)} were given",
        )
    text = format_value(values[index], m.group(3))
    if m.group(2):
        width = int(m.group(2))
        if abs(width) >= _MAX_WIDTH:
            raise FunctionError(IssueCode.INVALID_VALUE, f"the alignment {width} in {template!r} is too large")
        text = text.ljust(-width) if width < 0 else text.rjust(width)
    return text


def format_value(value: Any, spec: str | None) -> str:
    if spec and is_number(value):
        return format_number(value, spec)
    if isinstance(value, (dict, list)):
        return single_quoted_json(value)
    return to_arm_string(value)


def _quote(text: str) -> str:
    escaped = json.dumps(text, ensure_ascii=False)[1:-1].replace('\\"', '"').replace("'", "\\'")
    return f"'{escaped}'"


def single_quoted_json(value: Any) -> str:
    """How format() renders an object or array: compact JSON with single quotes, as the engine does
    (Bicep's evaluation tests: ``'>${obj}<'`` gives ``>{'a':'b','!c':2}<``)."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{_quote(str(k))}:{single_quoted_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(single_quoted_json(v) for v in value) + "]"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return json.dumps(value)
    return to_arm_string(value)


_STANDARD = re.compile(r"^([A-Za-z])(\d{0,9})$")
# .NET rejects alignments of a million or more; precision is capped so a template cannot ask for gigabytes.
_MAX_WIDTH = 1_000_000
_MAX_PRECISION = 1_000


def _group(digits: str) -> str:
    return f"{int(digits):,}" if digits else "0"


def _fixed(value: Decimal, decimals: int, grouped: bool) -> str:
    quantum = Decimal(1).scaleb(-decimals)
    rounded = value.quantize(quantum, rounding=ROUND_HALF_UP)
    sign = "-" if rounded < 0 else ""
    text = f"{abs(rounded):f}"
    whole, _, frac = text.partition(".")
    if grouped:
        whole = _group(whole)
    return sign + whole + ("." + frac if frac else "")


def format_number(value: int | float, spec: str) -> str:
    """.NET standard (D, N, F, X, E, P, C, G, R) and custom ('000', '#,##0.00') numeric format strings."""
    m = _STANDARD.match(spec)
    if m:
        kind, digits = m.group(1), m.group(2)
        precision = int(digits) if digits else None
        if precision is not None and precision > _MAX_PRECISION:
            raise FunctionError(IssueCode.INVALID_VALUE, f"the precision in the format '{spec}' is too large")
        upper = kind.upper()
        if upper == "D":
            if not isinstance(value, int):
                raise FunctionError(IssueCode.INVALID_VALUE, "the 'D' format needs an integer")
            sign = "-" if value < 0 else ""
            return sign + str(abs(value)).rjust(precision or 0, "0")
        if upper == "X":
            if not isinstance(value, int):
                raise FunctionError(IssueCode.INVALID_VALUE, "the 'X' format needs an integer")
            hexed = format(value & 0xFFFFFFFFFFFFFFFF if value < 0 else value, "x")
            hexed = hexed.rjust(precision or 0, "0")
            return hexed.upper() if kind == "X" else hexed
    try:
        number = Decimal(value) if isinstance(value, int) else Decimal(repr(value))
    except InvalidOperation:
        return format_float(float(value))
    if m:
        if upper == "N":
            return _fixed(number, 2 if precision is None else precision, grouped=True)
        if upper == "F":
            return _fixed(number, 2 if precision is None else precision, grouped=False)
        if upper == "P":
            return _fixed(number * 100, 2 if precision is None else precision, grouped=True) + " %"
        if upper == "C":
            text = _fixed(abs(number), 2 if precision is None else precision, grouped=True)
            return f"(¤{text})" if number < 0 else f"¤{text}"
        if upper == "E":
            digits_after = 6 if precision is None else precision
            mantissa, exponent = f"{value:.{digits_after}e}".split("e")
            sign = "-" if exponent.startswith("-") else "+"
            return f"{mantissa}{kind}{sign}{exponent.lstrip('+-').rjust(3, '0')}"
        if upper in ("G", "R"):
            return str(value) if isinstance(value, int) else format_float(value)
    return _custom_number(number, spec)


def _custom_number(number: Decimal, spec: str) -> str:
    """A practical subset of .NET custom numeric formats: '0' and '#' placeholders, ',' grouping, '.' decimals,
    literal text around them, quoted literals, and '%'."""
    section = spec.split(";")[0]
    literal = re.sub(r"'[^']*'|\"[^\"]*\"", "", section)
    start = next((i for i, c in enumerate(section) if c in "0#"), None)
    if start is None:
        return section.replace("'", "").replace('"', "")
    end = max(i for i, c in enumerate(section) if c in "0#.,") + 1
    prefix, pattern, suffix = section[:start], section[start:end], section[end:]
    if "%" in literal:
        number *= 100
    whole_pat, _, frac_pat = pattern.partition(".")
    grouped = "," in whole_pat.rstrip(",")
    min_whole = whole_pat.count("0")
    min_frac = frac_pat.count("0")
    max_frac = min_frac + frac_pat.count("#")
    quantum = Decimal(1).scaleb(-max_frac)
    rounded = number.quantize(quantum, rounding=ROUND_HALF_UP)
    sign = "-" if rounded < 0 else ""
    whole, _, frac = f"{abs(rounded):f}".partition(".")
    whole = whole.lstrip("0")
    whole = whole.rjust(min_whole, "0")
    if grouped and whole:
        whole = f"{int(whole):,}".rjust(min_whole, "0")
    frac = frac.rstrip("0").ljust(min_frac, "0") if max_frac else ""
    body = whole + ("." + frac if frac else "")
    if not body:
        body = "0" if min_whole else ""
    strip = str.maketrans("", "", "'\"")
    return prefix.translate(strip) + sign + body + suffix.translate(strip)
