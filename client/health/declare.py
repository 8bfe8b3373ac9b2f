"""Reading health check declarations: the health file next to the template and the ``--health-check`` flags.

All of it runs before the deployment starts. A mistake raises ``HealthDeclarationError`` whose message names the
input (the file and the check, or the flag value), what is wrong and what to do.

Flag syntax (one check per flag; the flag may be repeated; quote values holding spaces, shell-style)::

    tcp:HOST:PORT              [name=N] [timeout=5s] [interval=2s]
    http:[METHOD ]URL          [expect=200-299] [contains=TEXT] [header=NAME:VALUE]... [ca=FILE] [tls=off]
                               [name=N] [timeout=5s] [interval=2s]
    arm[:RESOURCE_ID,...]      [availability=on] [name=N] [timeout=30s] [interval=10s]

Targets may use the deployment's outputs: ``{outputs.NAME}`` or ``{outputs.NAME.field}``.
"""

from __future__ import annotations

import json
import re
import shlex
import ssl
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from client.inputs import MAX_SMALL_FILE_BYTES, InputError, read_input_file
from contract.health import CHECK_KINDS, MAX_TEXT, HealthCheck, HealthSpec, TcpCheck, bounded_duration
from contract.health_targets import (
    TargetError,
    check_declared,
    check_port_declared,
    output_references,
    redact_urls_in,
    substitute,
)

HEALTH_FILE_SUFFIXES: tuple[str, ...] = (".health.json", ".health.yaml", ".health.yml")
FLAG = "--health-check"

_FLAG_OPTIONS: dict[str, dict[str, str]] = {
    "tcp": {"name": "name", "timeout": "timeout_seconds", "interval": "retry_interval_seconds"},
    "http": {
        "name": "name",
        "timeout": "timeout_seconds",
        "interval": "retry_interval_seconds",
        "expect": "expect_status",
        "contains": "body_contains",
        "header": "headers",
        "ca": "ca_file",
        "tls": "verify_tls",
    },
    "arm": {"name": "name", "timeout": "timeout_seconds", "interval": "retry_interval_seconds", "availability": ""},
}
_ON = {"on": True, "true": True, "yes": True, "1": True, "off": False, "false": False, "no": False, "0": False}


class HealthDeclarationError(InputError):
    """A health declaration is unusable. ``str(exc)`` is the one-paragraph message for the user (exit code 2).
    URLs in it have their query strings and credentials redacted: messages end up in CI logs."""

    def __init__(self, message: str) -> None:
        super().__init__(redact_urls_in(message))


# --------------------------------------------------------------------------------------------------- entry point


def load_health_spec(
    *,
    template_path: str | Path | None,
    flags: Sequence[str] = (),
    declared_outputs: Mapping[str, str | None] | Iterable[str] = (),
    known_outputs: Mapping[str, Any] | None = None,
    health_file: str | Path | None = None,
    window: float | str | None = None,
    timeout: float | str | None = None,
    retry_interval: float | str | None = None,
) -> HealthSpec:
    """The checks for one deployment: the health file (``health_file``, else the one next to the template) plus
    every ``--health-check`` flag, validated against the outputs the template declares.

    ``declared_outputs`` is the template's output names, or a mapping of name → declared type (see
    ``targets.declared_outputs``), which also catches ``{outputs.s.field}`` on a string output. Window, timeout
    and retry interval from the command line override the file's.
    """
    file_path = Path(health_file) if health_file is not None else None
    if file_path is None and template_path is not None:
        file_path = find_health_file(template_path)
    settings: dict[str, Any] = {}
    labelled: list[tuple[str, HealthCheck]] = []
    if file_path is not None:
        settings, from_file = read_health_file(file_path)
        labelled.extend(from_file)
    for value in flags:
        check = parse_health_check_flag(value)  # first: it refuses an oversized value before anything reads it
        labelled.append((flag_label(value), check))
    for key, given, what in (
        ("window_seconds", window, "--health-window"),
        ("timeout_seconds", timeout, "--health-timeout"),
        ("retry_interval_seconds", retry_interval, "--health-interval"),
    ):
        if given is not None:
            try:
                settings[key] = bounded_duration(key, given)
            except ValueError as exc:
                raise HealthDeclarationError(f"{what} {exc}; see docs/HEALTH.md (Timing) for the bounds.") from None
    declared = _declared_mapping(declared_outputs)
    checks = _named(labelled)
    for label, check in zip((lbl for lbl, _ in labelled), checks, strict=True):
        for text in check.placeholder_texts():
            try:
                check_declared(text, declared)
            except TargetError as exc:
                raise HealthDeclarationError(f"{label}: {_without_header_values(str(exc), check)}") from None
        if isinstance(check, TcpCheck) and isinstance(check.port, str):
            try:
                check_port_declared(check.port, declared)
            except TargetError as exc:
                raise HealthDeclarationError(f"{label}: {exc}") from None
        if known_outputs:
            _check_known(label, check, known_outputs)
    source = str(file_path) if file_path else "the command line"
    try:
        return HealthSpec(checks=checks, **settings)
    except ValidationError as exc:
        raise HealthDeclarationError(f"Health settings from {source}: {_pydantic_message(exc)}") from None


def find_health_file(template_path: str | Path) -> Path | None:
    """``<stem>.health.json`` (or ``.yaml``/``.yml``) beside the template; an error when more than one exists."""
    template = Path(template_path)
    stem = template.name[: -len(template.suffix)] if template.suffix else template.name
    found = [template.with_name(stem + suffix) for suffix in HEALTH_FILE_SUFFIXES]
    found = [p for p in found if p.is_file()]
    if len(found) > 1:
        raise HealthDeclarationError(
            f"Both {found[0]} and {found[1]} sit next to the template {template}; keep one health file "
            "(or name the one to use with --health-file)."
        )
    return found[0] if found else None


# --------------------------------------------------------------------------------------------------- the file


def read_health_file(path: str | Path) -> tuple[dict[str, Any], list[tuple[str, HealthCheck]]]:
    """(settings, [(label, check)]) from a health file: ``{"checks": [...], "window_seconds": ...}`` or a bare
    list of checks. Relative ``ca_file`` paths are read from the file's directory."""
    p = Path(path)
    doc = _read_document(p)
    if isinstance(doc, list):
        doc = {"checks": doc}
    if not isinstance(doc, dict):
        raise HealthDeclarationError(
            f"The health file '{p}' holds {_kind(doc)}; it must be an object with a \"checks\" list "
            '(e.g. {"checks": [{"kind": "tcp", "host": "...", "port": 443}]}) or a bare list of checks.'
        )
    allowed = {"checks", "window_seconds", "timeout_seconds", "retry_interval_seconds", "$schema"}
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise HealthDeclarationError(
            f"The health file '{p}' has the key '{unknown[0]}', which is not a health setting; "
            f"allowed: {', '.join(sorted(allowed - {'$schema'}))}."
        )
    raw_checks = doc.get("checks", [])
    if not isinstance(raw_checks, list):
        raise HealthDeclarationError(f"The health file '{p}' has \"checks\" as {_kind(raw_checks)}; make it a list.")
    settings = {k: v for k, v in doc.items() if k not in ("checks", "$schema")}
    checks: list[tuple[str, HealthCheck]] = []
    for index, raw in enumerate(raw_checks, start=1):
        name = raw.get("name") if isinstance(raw, dict) else None
        label = f"The health file '{p}', check #{index}" + (f" ('{name}')" if isinstance(name, str) and name else "")
        checks.append((label, _build_check(raw, label=label, base_dir=p.parent)))
    return settings, checks


def _read_document(p: Path) -> Any:
    try:  # a regular file within the size limit, read without blocking (a FIFO or /dev/zero is refused)
        raw = read_input_file(p, what="health file", flag="--health-file", max_bytes=MAX_SMALL_FILE_BYTES)
    except InputError as exc:
        raise HealthDeclarationError(str(exc)) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise HealthDeclarationError(f"The health file '{p}' cannot be read as UTF-8 text ({exc}).") from None
    if p.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise HealthDeclarationError(
                f"The health file '{p}' is YAML, but PyYAML is not installed; `pip install pyyaml`, or write the "
                f"same content as JSON in {p.with_suffix('.json')}."
            ) from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or "syntax error"
            raise HealthDeclarationError(f"The health file '{p}' is not valid YAML: {problem}{where}.") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise HealthDeclarationError(
            f"The health file '{p}' is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
        ) from None


def _build_check(raw: Any, *, label: str, base_dir: Path) -> HealthCheck:
    if not isinstance(raw, dict):
        raise HealthDeclarationError(f'{label} is {_kind(raw)}; each check is an object with a "kind".')
    kind = raw.get("kind")
    if kind not in CHECK_KINDS:
        what = f"the kind '{kind}'" if kind is not None else 'no "kind"'
        raise HealthDeclarationError(f"{label} has {what}; known kinds: {', '.join(CHECK_KINDS)}.")
    fields = dict(raw)
    if kind == "http" and fields.get("ca_file"):
        fields["ca_pem"] = _read_ca(str(fields["ca_file"]), base_dir=base_dir, label=label)
    return _validate(fields, label=label)


def _validate(fields: dict[str, Any], *, label: str) -> HealthCheck:
    from pydantic import TypeAdapter

    try:
        return TypeAdapter(HealthCheck).validate_python(fields)
    except ValidationError as exc:
        raise HealthDeclarationError(f"{label}: {_pydantic_message(exc)}") from None


def _check_known(label: str, check: HealthCheck, known: Mapping[str, Any]) -> None:
    """Placeholders whose outputs the engine already knows before deploying (literal objects, values computed from
    parameters) are substituted now: a field the value does not have, a null, or an object where a text is needed
    fails here (exit 2) rather than after deploying. Only the shape is judged; no value is quoted."""
    known_names = {name.lower() for name in known}
    for text in check.placeholder_texts():
        refs = output_references(text)
        if refs and all(path[0].lower() in known_names for path in refs):
            try:
                substitute(text, known)
            except TargetError as exc:
                raise HealthDeclarationError(
                    f"{label}: {_without_header_values(str(exc), check)} (known from the template before deploying)."
                ) from None


def _without_header_values(message: str, check: HealthCheck) -> str:
    """``message`` with any header value of ``check`` replaced by a name for it: header values are secrets."""
    for name, value in getattr(check, "headers", {}).items():
        if value:
            message = message.replace(value, f"<value of header {name}>")
    return message


def _pydantic_message(exc: ValidationError) -> str:
    """The first problem, said plainly: which field and what is wrong."""
    err = exc.errors(include_url=False)[0]
    loc = [str(p) for p in err["loc"] if p not in CHECK_KINDS]
    field = ".".join(loc)
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return f"'{field}' is not a setting of this check kind; see docs/HEALTH.md for the allowed keys."
    if err["type"] == "missing":
        return f"'{field}' is required."
    return f"{field}: {msg}." if field else f"{msg}."


def _read_ca(ca_file: str, *, base_dir: Path, label: str) -> str:
    path = Path(ca_file).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    try:
        pem = read_input_file(path, what="CA file", flag="ca=", max_bytes=MAX_SMALL_FILE_BYTES).decode("ascii")
    except InputError as exc:
        raise HealthDeclarationError(f"{label}: {exc}") from None
    except UnicodeDecodeError as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise HealthDeclarationError(f"{label}: the CA file '{path}' cannot be read ({reason}).") from None
    try:
        ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, ValueError):
        raise HealthDeclarationError(
            f"{label}: the CA file '{path}' holds no PEM certificate (-----BEGIN CERTIFICATE-----); give the CA "
            "that issued the server's certificate, in PEM form."
        ) from None
    return pem


# --------------------------------------------------------------------------------------------------- the flag


def flag_label(value: str) -> str:
    """How messages name a ``--health-check`` value: as given, but with header values replaced (they are tokens:
    an ``Authorization`` header) — URLs' queries and credentials are redacted by ``HealthDeclarationError``."""
    if len(value) > 2 * MAX_TEXT:
        return f"{FLAG} '{value.partition(':')[0]}:…'"
    try:
        tokens = shlex.split(value)
    except ValueError:
        masked = _HEADER_OPTION.sub(r"\1<redacted>", value)
        return f"{FLAG} '{masked}'"
    shown = [
        f"header={t[7:].partition(':')[0]}:<redacted>" if t.lower().startswith("header=") and ":" in t else t
        for t in tokens
    ]
    return f"{FLAG} '{shlex.join(shown)}'" if shown != tokens else f"{FLAG} '{value}'"


_HEADER_OPTION = re.compile(r"(header=[^:\s'\"]*:).*", re.IGNORECASE | re.DOTALL)


def parse_health_check_flag(value: str) -> HealthCheck:
    """One ``--health-check`` value → a check (syntax in this module's docstring)."""
    if len(value) > 2 * MAX_TEXT:
        raise HealthDeclarationError(
            f"{FLAG} '{value.partition(':')[0]}:…' is {len(value) // 1024} KiB long; one flag declares one check "
            f"(at most {2 * MAX_TEXT // 1024} KiB) — put larger declarations in a health file."
        )
    label = flag_label(value)
    try:
        tokens = shlex.split(value)
    except ValueError as exc:
        raise HealthDeclarationError(f"{label}: {exc} (quote values holding spaces, shell-style).") from None
    if not tokens:
        raise HealthDeclarationError(f"{FLAG} is empty; write e.g. {FLAG} 'tcp:db.example.com:5432'.")
    kind, _, rest = tokens[0].partition(":")
    kind = kind.lower()
    if kind == "plugin":
        raise HealthDeclarationError(
            f"{label}: plugin checks are declared in a health file (their settings are JSON); see docs/HEALTH.md."
        )
    if kind not in CHECK_KINDS:
        raise HealthDeclarationError(
            f"{label} has the kind '{kind}'; known kinds: {', '.join(CHECK_KINDS)} "
            f"(e.g. tcp:HOST:PORT, http:GET https://HOST/health, arm)."
        )
    options = tokens[1:]
    fields: dict[str, Any] = {"kind": kind}
    if kind == "tcp":
        host, sep, port = rest.rpartition(":")
        if not sep or not host or not port:
            raise HealthDeclarationError(f"{label} has no HOST:PORT after 'tcp:'; write tcp:HOST:PORT.")
        fields.update(host=host, port=port)
    elif kind == "http":
        if rest and rest.isalpha() and options and "=" not in options[0].split("/")[0]:
            fields["method"], url = rest, options.pop(0)
        elif rest:
            url = rest
        elif options:
            url = options.pop(0)
        else:
            raise HealthDeclarationError(f"{label} has no URL; write http:GET https://HOST/PATH.")
        fields["url"] = url
    elif rest and rest.lower() != "all":
        fields["resources"] = [r.strip() for r in rest.split(",") if r.strip()]
    allowed = _FLAG_OPTIONS[kind]
    for option in options:
        key, eq, val = option.partition("=")
        key = key.lower()
        if not eq or key not in allowed:
            raise HealthDeclarationError(
                f"{label} has '{option}', which is not an option of a {kind} check; "
                f"options: {', '.join(k + '=' for k in allowed)}."
            )
        if key == "header":
            name, colon, hval = val.partition(":")
            if not colon or not name.strip():
                raise HealthDeclarationError(f"{label} has '{option}'; write header=NAME:VALUE.")
            fields.setdefault("headers", {})[name.strip()] = hval.strip()
        elif key in ("tls", "availability"):
            if val.lower() not in _ON:
                raise HealthDeclarationError(f"{label} has '{option}'; write {key}=on or {key}=off.")
            fields[allowed[key] or key] = _ON[val.lower()]
        elif key == "ca":
            fields["ca_file"] = val
            fields["ca_pem"] = _read_ca(val, base_dir=Path.cwd(), label=label)
        else:
            fields[allowed[key]] = val
    return _validate(fields, label=label)


# --------------------------------------------------------------------------------------------------- helpers


def _named(labelled: list[tuple[str, HealthCheck]]) -> list[HealthCheck]:
    """Give every check a name: the user's (unique, or an error) or one derived from its target."""
    explicit: dict[str, str] = {}
    for label, check in labelled:
        if check.name:
            if check.name in explicit:
                raise HealthDeclarationError(
                    f"{label} is named '{check.name}', like {explicit[check.name]}; give each check its own name."
                )
            explicit[check.name] = label
    taken = set(explicit)
    result: list[HealthCheck] = []
    for _, check in labelled:
        if not check.name:
            base = f"{check.kind} {check.describe_target()}"
            name, n = base, 2
            while name in taken:
                name, n = f"{base} #{n}", n + 1
            taken.add(name)
            check = check.model_copy(update={"name": name})
        result.append(check)
    return result


def _declared_mapping(declared: Mapping[str, str | None] | Iterable[str]) -> dict[str, str | None]:
    if isinstance(declared, Mapping):
        return {str(k): (v if isinstance(v, str) else None) for k, v in declared.items()}
    return {str(name): None for name in declared}


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, str):
        return "a text"
    return "null" if value is None else "a number" if isinstance(value, int | float) else type(value).__name__


__all__ = [
    "FLAG",
    "HEALTH_FILE_SUFFIXES",
    "HealthDeclarationError",
    "find_health_file",
    "load_health_spec",
    "parse_health_check_flag",
    "read_health_file",
]
