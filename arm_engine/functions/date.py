"""Date functions. utcNow() is allowed only where ARM allows it (parameter default values); dateTimeAdd takes
ISO-8601 durations; formats are .NET date format strings."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import IssueCode
from ._core import FunctionError, Invocation, arg_int, arg_str, arm_function, check_int64

_ISO_DURATION = re.compile(
    r"^(?P<sign>[-+])?P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$",
    re.IGNORECASE,
)

_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]  # fmt: skip
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

_STANDARD_FORMATS = {
    "d": "MM/dd/yyyy",
    "D": "dddd, dd MMMM yyyy",
    "f": "dddd, dd MMMM yyyy HH:mm",
    "F": "dddd, dd MMMM yyyy HH:mm:ss",
    "g": "MM/dd/yyyy HH:mm",
    "G": "MM/dd/yyyy HH:mm:ss",
    "m": "MMMM dd",
    "M": "MMMM dd",
    "o": "yyyy-MM-ddTHH:mm:ss.fffffffK",
    "O": "yyyy-MM-ddTHH:mm:ss.fffffffK",
    "r": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
    "R": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
    "s": "yyyy-MM-ddTHH:mm:ss",
    "t": "HH:mm",
    "T": "HH:mm:ss",
    "u": "yyyy-MM-dd HH:mm:ssZ",
    "U": "dddd, dd MMMM yyyy HH:mm:ss",
    "y": "yyyy MMMM",
    "Y": "yyyy MMMM",
}

DEFAULT_OUTPUT = "yyyy-MM-ddTHH:mm:ssZ"


def format_datetime(moment: datetime, fmt: str) -> str:
    """Render with a .NET (invariant culture, UTC) standard or custom date and time format string."""
    if len(fmt) == 1:
        if fmt not in _STANDARD_FORMATS:
            raise FunctionError(IssueCode.INVALID_VALUE, f"{fmt!r} is not a valid date format")
        fmt = _STANDARD_FORMATS[fmt]
    out: list[str] = []
    i, n = 0, len(fmt)
    while i < n:
        ch = fmt[i]
        if ch in "'\"":
            end = fmt.find(ch, i + 1)
            if end < 0:
                raise FunctionError(IssueCode.INVALID_VALUE, f"unterminated quote in the date format {fmt!r}")
            out.append(fmt[i + 1 : end])
            i = end + 1
            continue
        if ch == "\\" and i + 1 < n:
            out.append(fmt[i + 1])
            i += 2
            continue
        if ch == "%" and i + 1 < n:
            i += 1
            continue
        j = i
        while j < n and fmt[j] == ch:
            j += 1
        count = j - i
        out.append(_date_token(moment, ch, count))
        i = j
    return "".join(out)


def _date_token(moment: datetime, ch: str, count: int) -> str:
    if ch == "y":
        return str(moment.year % 100).rjust(count, "0") if count <= 2 else str(moment.year).rjust(count, "0")
    if ch == "M":
        if count >= 4:
            return _MONTHS[moment.month - 1]
        if count == 3:
            return _MONTHS[moment.month - 1][:3]
        return str(moment.month).rjust(count, "0")
    if ch == "d":
        if count >= 4:
            return _DAYS[moment.weekday()]
        if count == 3:
            return _DAYS[moment.weekday()][:3]
        return str(moment.day).rjust(count, "0")
    if ch == "H":
        return str(moment.hour).rjust(min(count, 2), "0")
    if ch == "h":
        return str(moment.hour % 12 or 12).rjust(min(count, 2), "0")
    if ch == "m":
        return str(moment.minute).rjust(min(count, 2), "0")
    if ch == "s":
        return str(moment.second).rjust(min(count, 2), "0")
    if ch in "fF":
        digits = f"{moment.microsecond:06d}0"[: min(count, 7)]
        return digits.rstrip("0") if ch == "F" else digits
    if ch == "t":
        marker = "AM" if moment.hour < 12 else "PM"
        return marker[:count] if count < 2 else marker
    if ch == "K":
        return "Z"
    if ch == "z":
        return {1: "+0", 2: "+00"}.get(count, "+00:00")
    if ch == "g":
        return "A.D."
    return ch * count


def parse_datetime(inv: Invocation, text: str) -> datetime:
    value = text.strip()
    candidate = value[:-1] + "+00:00" if value[-1:] in "zZ" else value
    candidate = re.sub(r"(\.\d{6})\d+", r"\1", candidate)
    try:
        moment = datetime.fromisoformat(candidate)
    except ValueError:
        moment = None
    if moment is None:
        for pattern in ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y", "%Y%m%dT%H%M%SZ"):
            try:
                moment = datetime.strptime(value, pattern)
                break
            except ValueError:
                continue
    if moment is None:
        raise FunctionError(IssueCode.INVALID_VALUE, f"{inv.name}(): {text!r} is not a valid date and time")
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _add_months(moment: datetime, months: int) -> datetime:
    total = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(total, 12)
    if not 1 <= year <= 9999:
        raise FunctionError(IssueCode.INVALID_VALUE, "the resulting date is out of range")
    day = moment.day
    while True:
        try:
            return moment.replace(year=year, month=month + 1, day=day)
        except ValueError:
            day -= 1


def add_duration(inv: Invocation, moment: datetime, duration: str) -> datetime:
    m = _ISO_DURATION.match(duration.strip())
    if m is None or duration.strip().upper() in ("P", "PT", "-P", "+P"):
        raise FunctionError(
            IssueCode.INVALID_VALUE, f"{duration!r} is not an ISO 8601 duration such as 'P1D' or 'PT1H'"
        )
    sign = -1 if m.group("sign") == "-" else 1
    parts = {k: float(v) if v else 0.0 for k, v in m.groupdict().items() if k != "sign"}
    try:
        moment = _add_months(moment, sign * int(parts["years"] * 12 + parts["months"]))
        return moment + sign * timedelta(
            weeks=parts["weeks"],
            days=parts["days"],
            hours=parts["hours"],
            minutes=parts["minutes"],
            seconds=parts["seconds"],
        )
    except OverflowError:
        raise FunctionError(IssueCode.INVALID_VALUE, "the resulting date is out of range") from None


_BASE_SHAPES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"), "yyyy-MM-ddTHH:mm:ssZ"),
    (re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z$"), "yyyy-MM-dd HH:mm:ssZ"),
    (re.compile(r"^\d{8}T\d{6}Z$"), "yyyyMMddTHHmmssZ"),
    (re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$"), "yyyy-MM-ddTHH:mm:ss"),
    (re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}Z$"), "yyyy-MM-ddTHH:mmZ"),
    (re.compile(r"^\d{4}-\d{2}-\d{2}$"), "yyyy-MM-dd"),
    (re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]00:00$"), "yyyy-MM-ddTHH:mm:sszzz"),
]
_FRACTION_SHAPE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.(\d{1,7})Z$")


def base_format(text: str) -> str | None:
    """dateTimeAdd without a format answers in the format of its base value (ARM's documented rule)."""
    value = text.strip()
    for pattern, fmt in _BASE_SHAPES:
        if pattern.match(value):
            return fmt
    m = _FRACTION_SHAPE.match(value)
    if m:
        return "yyyy-MM-ddTHH:mm:ss." + "f" * len(m.group(1)) + "Z"
    return None


def default_render(moment: datetime) -> str:
    text = format_datetime(moment, "yyyy-MM-ddTHH:mm:ss")
    if moment.microsecond:
        text += "." + f"{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


@arm_function("utcNow", 0, 1)
def utc_now(inv: Invocation, args: list[Any]) -> str:
    if not inv.ctx.allow_runtime_functions:
        raise FunctionError(IssueCode.FUNCTION_NOT_ALLOWED, "utcNow() is allowed only in a parameter's defaultValue")
    fmt = arg_str(inv, args, 0) if args else "yyyyMMddTHHmmssZ"
    return format_datetime(inv.ctx.scope.deployment_time or datetime.now(UTC), fmt)


@arm_function("dateTimeAdd", 2, 3)
def date_time_add(inv: Invocation, args: list[Any]) -> str:
    moment = add_duration(inv, parse_datetime(inv, arg_str(inv, args, 0)), arg_str(inv, args, 1))
    if len(args) == 3:
        return format_datetime(moment, arg_str(inv, args, 2))
    shape = base_format(args[0])
    return format_datetime(moment, shape) if shape else default_render(moment)


@arm_function("dateTimeFromEpoch", 1, 1)
def date_time_from_epoch(inv: Invocation, args: list[Any]) -> str:
    seconds = arg_int(inv, args, 0)
    try:
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    except OverflowError:
        raise FunctionError(IssueCode.INVALID_VALUE, f"{seconds} is out of the date range") from None
    return default_render(moment)


@arm_function("dateTimeToEpoch", 1, 1)
def date_time_to_epoch(inv: Invocation, args: list[Any]) -> int:
    moment = parse_datetime(inv, arg_str(inv, args, 0))
    return check_int64(int((moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()))
