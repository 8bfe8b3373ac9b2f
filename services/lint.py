"""The lint gate: one call that says whether a template may go on to PLANNING, and why not.

``lint_template`` takes a Bicep template (compiled and linted by the user's Bicep CLI, see ``services.bicep``) or
an ARM JSON template (checked by us: JSON syntax with line numbers, the template's shape, expression syntax, and the
ARM engine's parameter, expression and dependency-cycle checks), optionally with a ``.bicepparam`` or JSON parameters
file, and returns a ``LintResult``: every diagnostic as ``file, line, col, level, code, message``, the counts, the
compiled template with its hash, the compiler's version and the gate decision. Errors always close the gate;
warnings close it unless ``allow_warnings``; either way they are recorded.

Problems with the inputs themselves (a missing file, no compiler for a .bicep file, a .bicepparam whose ``using``
names another template) raise ``LintError``, whose message names the input and what to do.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from arm_engine.json_source import blank_comments, duplicate_property, locate, value_positions
from services.bicep import (
    BicepCompiler,
    BicepError,
    BicepNotFoundError,
    BicepTimeoutError,
    BicepUsingMismatchError,
    Diagnostic,
    DiagnosticLevel,
    build_params,
    build_template,
    compiler_timeout,
    read_using,
    require_compiler,
)

# ARM rejects a deployment request over 4 MB; the template is most of it.
# https://learn.microsoft.com/azure/azure-resource-manager/templates/best-practices#template-limits
MAX_TEMPLATE_BYTES = 4 * 1024 * 1024

__all__ = [
    "MAX_TEMPLATE_BYTES",
    "Diagnostic",
    "DiagnosticLevel",
    "LintError",
    "LintResult",
    "lint_template",
    "render_diagnostics",
]


class LintError(Exception):
    """The inputs cannot be linted at all. ``code`` is stable: BicepNotFound, UsingMismatch, InvalidInput,
    BicepFailed, BicepTimeout (the only one worth a retry). ``str(exc)`` is the message for the user."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class LintResult(BaseModel):
    """What the LINTING stage decided, small enough for Temporal history once ``template`` is moved to the content
    store (``without_template``)."""

    template_path: str
    template_kind: Literal["bicep", "arm-json"]
    parameters_path: str | None = None
    diagnostics: list[Diagnostic] = Field(default_factory=list)
    error_count: int = 0
    warning_count: int = 0
    info_count: int = 0
    # The compiled ARM JSON template (for ARM JSON input: the template as read). None when it did not compile.
    template: dict[str, Any] | None = None
    template_sha256: str | None = None  # sha256 hex of ``template_bytes(template)``
    template_size: int | None = None  # bytes of the compact JSON ARM receives
    # Parameters built from a .bicepparam file (deploymentParameters document); None otherwise.
    parameters: dict[str, Any] | None = None
    bicep_version: str | None = None
    compiler: str | None = None  # how it was invoked, e.g. "/usr/local/bin/bicep" or "/usr/bin/az bicep"
    diagnostics_format: Literal["sarif", "text", "arm-engine"] | None = None
    allow_warnings: bool = False
    passed: bool = False
    gate_reason: str = ""

    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.level == DiagnosticLevel.ERROR]

    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.level == DiagnosticLevel.WARNING]

    def without_template(self) -> LintResult:
        """A copy without the template body (keep its hash), for history and audit facts."""
        return self.model_copy(update={"template": None})

    def render(self) -> str:
        return render_diagnostics(self.diagnostics)


def template_bytes(template: Mapping[str, Any]) -> bytes:
    """The compact UTF-8 JSON of a template: what its hash and size are taken over."""
    return json.dumps(template, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# ----------------------------------------------------------------------------------------------- rendering


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def count_levels(diagnostics: Iterable[Diagnostic]) -> tuple[int, int, int]:
    errors = warnings = infos = 0
    for d in diagnostics:
        if d.level == DiagnosticLevel.ERROR:
            errors += 1
        elif d.level == DiagnosticLevel.WARNING:
            warnings += 1
        else:
            infos += 1
    return errors, warnings, infos


def _summary(diagnostics: list[Diagnostic]) -> str:
    errors, warnings, infos = count_levels(diagnostics)
    parts = [_plural(errors, "error"), _plural(warnings, "warning")]
    if infos:
        parts.append(_plural(infos, "info"))
    return ", ".join(parts)


def render_diagnostics(diagnostics: list[Diagnostic]) -> str:
    """Diagnostics grouped by file, each as ``path(line,col) : Level CODE: message``, with counts per file and in all.

    Files appear in the order of their first diagnostic; within a file, diagnostics are sorted by position.
    """
    if not diagnostics:
        return "No diagnostics.\n"
    by_file: dict[str, list[Diagnostic]] = {}
    for d in diagnostics:
        by_file.setdefault(d.file, []).append(d)
    out: list[str] = []
    for file, items in by_file.items():
        items = sorted(items, key=lambda d: (d.line or 0, d.col or 0))
        out.append(f"{file}: {_summary(items)}")
        out.extend(d.render() for d in items)
        out.append("")
    out.append(f"{_summary(diagnostics)} in {_plural(len(by_file), 'file')}.")
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------------------------- the gate


def _gate(diagnostics: list[Diagnostic], *, allow_warnings: bool) -> tuple[bool, str]:
    errors, warnings, _ = count_levels(diagnostics)
    if errors:
        return False, f"{_plural(errors, 'error')} (and {_plural(warnings, 'warning')}): fix the template"
    if warnings and not allow_warnings:
        return False, f"{_plural(warnings, 'warning')}: fix them, or deploy with --allow-warnings to accept them"
    if warnings:
        return True, f"{_plural(warnings, 'warning')} accepted with --allow-warnings"
    return True, "no errors or warnings"


def _finish(result: LintResult) -> LintResult:
    if result.template is not None:
        data = template_bytes(result.template)
        result.template_sha256 = hashlib.sha256(data).hexdigest()
        result.template_size = len(data)
        if len(data) > MAX_TEMPLATE_BYTES:
            result.diagnostics.append(
                Diagnostic(
                    file=result.template_path,
                    level=DiagnosticLevel.ERROR,
                    code="TemplateTooLarge",
                    message=(
                        f"the compiled template is {len(data):,} bytes, over ARM's limit of {MAX_TEMPLATE_BYTES:,} "
                        "bytes (4 MB) for a deployment request. Split it into modules deployed separately, move "
                        "large literals (scripts, policy documents) out of the template, or use template specs."
                    ),
                )
            )
    result.error_count, result.warning_count, result.info_count = count_levels(result.diagnostics)
    result.passed, result.gate_reason = _gate(result.diagnostics, allow_warnings=result.allow_warnings)
    return result


def is_bicep(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".bicep"


def is_bicepparam(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".bicepparam"


def lint_template(
    template_path: str | Path | None,
    *,
    parameters_path: str | Path | None = None,
    parameters: Mapping[str, Any] | None = None,
    allow_warnings: bool = False,
    compiler: BicepCompiler | None = None,
    bicep_path: str | None = None,
    timeout: float | None = None,
    check_parameters: bool = True,
) -> LintResult:
    """Lint one template and decide the gate.

    ``template_path`` may be None when ``parameters_path`` is a .bicepparam file: its ``using`` target is linted.
    ``parameters`` (``{name: {"value": ...}}``) feed the ARM engine's checks of an ARM JSON template; without them
    the engine's parameter checks are skipped (and with ``check_parameters=False`` always: the caller runs them).
    The compiler is found on this machine unless one is passed.
    """
    try:
        return _lint(
            Path(template_path) if template_path is not None else None,
            parameters_path=Path(parameters_path) if parameters_path is not None else None,
            parameters=parameters,
            allow_warnings=allow_warnings,
            compiler=compiler,
            bicep_path=bicep_path,
            timeout=timeout if timeout is not None else compiler_timeout(),
            check_parameters=check_parameters,
        )
    except BicepNotFoundError as exc:
        raise LintError("BicepNotFound", str(exc)) from None
    except BicepUsingMismatchError as exc:
        raise LintError("UsingMismatch", str(exc)) from None
    except BicepTimeoutError as exc:
        raise LintError("BicepTimeout", str(exc)) from None
    except BicepError as exc:
        raise LintError("BicepFailed", str(exc)) from None


def _require_file(path: Path, flag: str, what: str) -> None:
    """A regular file within the input size limit; a device, a FIFO, an unreadable or oversized file is refused
    naming it (``services.input_files.read_input_file``), never read into memory or left blocking."""
    from services.input_files import MAX_TEMPLATE_FILE_BYTES, InputError, read_input_file

    try:
        read_input_file(path, what=what, flag=flag, max_bytes=MAX_TEMPLATE_FILE_BYTES)
    except InputError as exc:
        raise LintError("InvalidInput", str(exc)) from None


def _lint(
    template_path: Path | None,
    *,
    parameters_path: Path | None,
    parameters: Mapping[str, Any] | None,
    allow_warnings: bool,
    compiler: BicepCompiler | None,
    bicep_path: str | None,
    timeout: float,
    check_parameters: bool,
) -> LintResult:
    params_doc: dict[str, Any] | None = None
    param_diagnostics: list[Diagnostic] = []
    if parameters_path is not None:
        _require_file(parameters_path, "-p/--parameters", "parameters file")
    if template_path is not None:
        _require_file(template_path, "-t/--template", "template")

    if parameters_path is not None and is_bicepparam(parameters_path):
        using = read_using(parameters_path)
        if template_path is None:
            if using is None:
                raise LintError(
                    "InvalidInput",
                    f"The parameters file '{parameters_path}' is `using none`, so it names no template. Give the "
                    "template with -t/--template.",
                )
            template_path = using
            _require_file(template_path, f"the `using` declaration of {parameters_path}", "template")
        if compiler is None:
            compiler = require_compiler(parameters_path, bicep_path=bicep_path)
        built = build_params(compiler, parameters_path.absolute(), template=template_path, timeout=timeout)
        params_doc = built.parameters
        param_diagnostics = built.diagnostics

    if template_path is None:
        raise LintError("InvalidInput", "No template to lint: give -t/--template (or a .bicepparam with `using`).")

    if is_bicep(template_path):
        if compiler is None:
            compiler = require_compiler(template_path, bicep_path=bicep_path)
        build = build_template(compiler, template_path.absolute(), timeout=timeout)
        template: dict[str, Any] | None = None
        diagnostics = list(build.diagnostics)
        if build.template_text is not None:
            try:
                loaded = json.loads(build.template_text)
            except json.JSONDecodeError as exc:
                raise LintError(
                    "BicepFailed",
                    f"`bicep build` of '{template_path}' printed something that is not JSON ({exc.msg} at line "
                    f"{exc.lineno}). Is the configured compiler really Bicep ({compiler.describe()})?",
                ) from None
            template = loaded if isinstance(loaded, dict) else None
        result = LintResult(
            template_path=str(template_path),
            template_kind="bicep",
            diagnostics=_merge(param_diagnostics, diagnostics),
            template=template,
            bicep_version=compiler.version,
            compiler=" ".join(compiler.argv),
            diagnostics_format=build.diagnostics_format,
        )
    else:
        engine_params = parameters
        if engine_params is None and params_doc is not None:
            engine_params = params_doc.get("parameters")
        if engine_params is None and parameters_path is not None and not is_bicepparam(parameters_path):
            engine_params = _read_parameters_json(parameters_path)
        template, diagnostics = check_arm_template(
            template_path, parameters=engine_params if check_parameters else None
        )
        result = LintResult(
            template_path=str(template_path),
            template_kind="arm-json",
            diagnostics=_merge(param_diagnostics, diagnostics),
            template=template,
            bicep_version=compiler.version if compiler is not None else None,
            compiler=" ".join(compiler.argv) if compiler is not None else None,
            diagnostics_format="arm-engine",
        )
    result.parameters_path = str(parameters_path) if parameters_path is not None else None
    result.parameters = params_doc
    result.allow_warnings = allow_warnings
    return _finish(result)


def _merge(*groups: list[Diagnostic]) -> list[Diagnostic]:
    seen: set[tuple[Any, ...]] = set()
    out: list[Diagnostic] = []
    for group in groups:
        for d in group:
            key = (os.path.normcase(os.path.abspath(d.file)), d.line, d.col, d.level, d.code, d.message)
            if key not in seen:
                seen.add(key)
                out.append(d)
    return out


def _read_parameters_json(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # the parameters file is VALIDATING_PARAMETERS' business; here it only feeds the engine
    if isinstance(doc, dict) and isinstance(doc.get("parameters"), dict):
        return dict(doc["parameters"])
    return None


# ----------------------------------------------------------------------------------------------- ARM JSON


def _child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if key.isidentifier():
        return f"{path}.{key}" if path else key
    return f"{path}['{key}']"


class _Locator:
    def __init__(self, text: str) -> None:
        self._text = text
        self._map: dict[str, tuple[int, int]] | None = None

    def __call__(self, path: str) -> tuple[int | None, int | None]:
        if self._map is None:
            self._map = value_positions(self._text)
        found = locate(self._map, path) or self._map.get("")  # nearest enclosing value, else the document
        return found if found is not None else (None, None)


_TOP_LEVEL = {
    "$schema",
    "contentversion",
    "apiprofile",
    "definitions",
    "parameters",
    "variables",
    "functions",
    "resources",
    "outputs",
    "metadata",
    "languageversion",
    "imports",
    "extensions",
    "assertions",
}
_PARAMETER_TYPES = {"string", "securestring", "int", "bool", "object", "secureobject", "array"}
_CONTENT_VERSION = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$")


def check_arm_template(
    path: Path, *, parameters: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any] | None, list[Diagnostic]]:
    """Our static checks of an ARM JSON template, as diagnostics. Returns the template (None if unreadable)."""
    file = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LintError("InvalidInput", f"The template '{path}' cannot be read ({exc.strerror or exc}).") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, [_error(file, None, None, "InvalidJson", f"not UTF-8 text (bad byte at offset {exc.start})")]
    try:
        doc = json.loads(text)  # the common case: no comments, no need to scan the text ourselves
    except json.JSONDecodeError:
        text = blank_comments(text)
    except RecursionError:
        return None, [_error(file, None, None, "InvalidJson", "the JSON nests too deeply to read")]
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, [_error(file, exc.lineno, exc.colno, "InvalidJson", f"not valid JSON: {exc.msg}")]
    except RecursionError:
        return None, [_error(file, None, None, "InvalidJson", "the JSON nests too deeply to read")]
    locate = _Locator(text)
    if not isinstance(doc, dict):
        return None, [_error(file, 1, 1, "InvalidTemplate", "the top level is not a JSON object, so not a template")]
    duplicate = duplicate_property(text)
    if duplicate is not None:
        name, line, col = duplicate
        message = f"the property '{name}' is named twice in one object; ARM rejects duplicate property names"
        return doc, [_error(file, line, col, "DuplicateProperty", message)]
    diagnostics = _check_shape(doc, file, locate)
    diagnostics += _check_secure_defaults(doc, file, locate)
    diagnostics += _check_expressions(doc, file, locate)
    if not any(d.level == DiagnosticLevel.ERROR for d in diagnostics):
        from services.schema_lint import (
            check_resource_schemas,  # reads Azure's type schemas only when a template gets here
        )

        diagnostics += check_resource_schemas(doc, file, locate)
    if not any(d.level == DiagnosticLevel.ERROR for d in diagnostics):
        diagnostics += _engine_checks(doc, file, locate, parameters)
    return doc, diagnostics


_SECURE_TYPES = frozenset({"securestring", "secureobject"})
_HARMLESS_SECURE_DEFAULTS: tuple[Any, ...] = ("", {}, "[newGuid()]")


def _check_secure_defaults(
    doc: dict[str, Any], file: str, locate: Callable[[str], tuple[int | None, int | None]]
) -> list[Diagnostic]:
    """Bicep's linter rule ``secure-parameter-default`` for ARM JSON: a secure parameter with a hardcoded default
    puts the secret in the template (in source control, in ARM's deployment record). Empty or newGuid() is fine."""
    lowered = {k.lower(): k for k in doc}
    params = doc.get(lowered.get("parameters", ""), {})
    found: list[Diagnostic] = []
    if not isinstance(params, dict):
        return found
    for name, decl in params.items():
        if not isinstance(decl, dict) or str(decl.get("type", "")).lower() not in _SECURE_TYPES:
            continue
        key = next((k for k in decl if k.lower() == "defaultvalue"), None)
        if key is None:
            continue
        value = decl[key]
        if value in _HARMLESS_SECURE_DEFAULTS or (isinstance(value, str) and value.replace(" ", "") == "[newGuid()]"):
            continue
        line, col = locate(_child(_child(lowered["parameters"], name), key))
        found.append(
            Diagnostic(
                file=file,
                line=line,
                col=col,
                level=DiagnosticLevel.WARNING,
                code="secure-parameter-default",
                message=f"Secure parameter '{name}' has a hardcoded default value; secure parameters should not "
                "have hardcoded defaults (except for empty or newGuid()): pass the value at deployment instead "
                "[https://aka.ms/bicep/linter/secure-parameter-default]",
            )
        )
    return found


def static_error_count(doc: Mapping[str, Any]) -> int:
    """How many errors our static checks (template shape, expression syntax, unknown functions, argument counts)
    find in a template already read — VALIDATING_PARAMETERS leaves such a template to LINTING, which lists them."""
    if not isinstance(doc, dict):
        return 1
    diagnostics = _check_shape(doc, "template", lambda _path: (None, None))
    diagnostics += _check_expressions(doc, "template", lambda _path: (None, None))
    return sum(1 for d in diagnostics if d.level == DiagnosticLevel.ERROR)


def _error(file: str, line: int | None, col: int | None, code: str, message: str) -> Diagnostic:
    return Diagnostic(file=file, line=line, col=col, level=DiagnosticLevel.ERROR, code=code, message=message)


def _at(
    file: str, locate: Callable[[str], tuple[int | None, int | None]], path: str, code: str, msg: str
) -> Diagnostic:
    line, col = locate(path)
    return _error(file, line, col, code, f"{msg} (at {path or 'the top level'})")


def _check_shape(
    doc: dict[str, Any], file: str, locate: Callable[[str], tuple[int | None, int | None]]
) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    lowered = {k.lower(): k for k in doc}
    for key in doc:
        if key.lower() not in _TOP_LEVEL:
            found.append(_at(file, locate, _child("", key), "InvalidTemplate", f"'{key}' is not a template section"))
    for required in ("$schema", "contentVersion", "resources"):
        if required.lower() not in lowered:
            found.append(_error(file, 1, 1, "InvalidTemplate", f"required property '{required}' is missing"))
    schema = doc.get(lowered.get("$schema", "$schema"))
    if "$schema" in lowered and not isinstance(schema, str):
        found.append(_at(file, locate, _child("", lowered["$schema"]), "InvalidTemplate", "'$schema' must be a string"))
    version_key = lowered.get("contentversion")
    if version_key is not None:
        version = doc[version_key]
        if not isinstance(version, str) or not _CONTENT_VERSION.match(version):
            found.append(_at(file, locate, version_key, "InvalidTemplate", "'contentVersion' must look like 1.0.0.0"))
    symbolic = str(doc.get(lowered.get("languageversion", ""), "")).startswith("2")
    for section in ("parameters", "variables", "outputs", "definitions"):
        section_key = lowered.get(section.lower())
        if section_key is not None and not isinstance(doc[section_key], dict):
            found.append(_at(file, locate, section_key, "InvalidTemplate", f"'{section}' must be an object"))
    functions_key = lowered.get("functions")
    if functions_key is not None and not isinstance(doc[functions_key], list):
        found.append(_at(file, locate, functions_key, "InvalidTemplate", "'functions' must be an array"))
    params = doc.get(lowered.get("parameters", ""), {})
    if isinstance(params, dict):
        for name, decl in params.items():
            p = _child(lowered["parameters"], name)
            if not isinstance(decl, dict):
                found.append(_at(file, locate, p, "InvalidTemplate", f"parameter '{name}' must be an object"))
            elif "type" not in decl and "$ref" not in decl:
                found.append(_at(file, locate, p, "InvalidTemplate", f"parameter '{name}' has no 'type'"))
            elif "type" in decl and str(decl["type"]).lower() not in _PARAMETER_TYPES:
                found.append(
                    _at(
                        file,
                        locate,
                        _child(p, "type"),
                        "InvalidTemplate",
                        f"parameter '{name}' has type '{decl['type']}'; ARM knows "
                        + ", ".join(sorted(_PARAMETER_TYPES)),
                    )
                )
    resources_key = lowered.get("resources")
    if resources_key is not None:
        resources = doc[resources_key]
        if symbolic and isinstance(resources, dict):
            found += _check_resources(list(resources.items()), resources_key, file, locate, symbolic=True)
        elif isinstance(resources, list):
            found += _check_resources(list(enumerate(resources)), resources_key, file, locate, symbolic=symbolic)
        else:
            shape = "an object (languageVersion 2.0) or an array" if symbolic else "an array"
            found.append(_at(file, locate, resources_key, "InvalidTemplate", f"'resources' must be {shape}"))
    outputs = doc.get(lowered.get("outputs", ""), {})
    if isinstance(outputs, dict):
        for name, decl in outputs.items():
            p = _child(lowered["outputs"], name)
            if not isinstance(decl, dict) or ("type" not in decl and "$ref" not in decl):
                found.append(_at(file, locate, p, "InvalidTemplate", f"output '{name}' has no 'type'"))
    return found


def _check_resources(
    items: list[tuple[str | int, Any]],
    base: str,
    file: str,
    locate: Callable[[str], tuple[int | None, int | None]],
    *,
    symbolic: bool,
) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for key, res in items:
        p = _child(base, key)
        if not isinstance(res, dict):
            found.append(_at(file, locate, p, "InvalidTemplate", "a resource must be an object"))
            continue
        if res.get("import") is not None:  # languageVersion 2.0 extensibility resources carry no type/name
            continue
        missing = [f for f in ("type", "name") if f not in res]
        if "apiVersion" not in res and not (symbolic and res.get("existing")):
            missing.append("apiVersion")
        if missing:
            found.append(
                _at(file, locate, p, "InvalidTemplate", "the resource lacks " + ", ".join(f"'{m}'" for m in missing))
            )
        children = res.get("resources")
        if isinstance(children, list):
            found += _check_resources(
                list(enumerate(children)), _child(p, "resources"), file, locate, symbolic=symbolic
            )
    return found


def _strings(value: Any, path: str) -> Iterable[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, _child(path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, _child(path, i))


def _check_expressions(
    doc: dict[str, Any], file: str, locate: Callable[[str], tuple[int | None, int | None]]
) -> list[Diagnostic]:
    from arm_engine import TemplateError
    from arm_engine.evaluator import call_problems
    from arm_engine.expressions import is_expression, parse_expression

    found: list[Diagnostic] = []
    for path, text in _strings(doc, ""):
        if path.startswith("metadata") or not is_expression(text):
            continue
        try:
            expr = parse_expression(text, path)
        except TemplateError as exc:
            for issue in exc.issues:
                line, col = locate(issue.path or path)
                found.append(_error(file, line, col, issue.code, f"{issue.message} (at {issue.path or path})"))
            continue
        # Unknown functions and wrong argument counts too: the engine stops at the first, the gate lists them all.
        for code, message in call_problems(expr):
            line, col = locate(path)
            found.append(_error(file, line, col, str(code), f'{message} (in "{text}") (at {path})'))
    return found


def _engine_checks(
    doc: dict[str, Any],
    file: str,
    locate: Callable[[str], tuple[int | None, int | None]],
    parameters: Mapping[str, Any] | None,
) -> list[Diagnostic]:
    """The ARM engine's validation (parameter types and values, expressions, references, dependency cycles).

    It needs the deployment's parameters: without them it is skipped unless every parameter has a default, because
    every check after the first missing parameter would be noise (in the workflow, VALIDATING_PARAMETERS has already
    run it with the real ones).
    """
    if parameters is None:
        # Without a parameters file the engine still runs when every parameter has a default: nothing would be noise.
        declared = doc.get("parameters")
        declared = declared if isinstance(declared, Mapping) else {}
        if not all(isinstance(p, Mapping) and "defaultValue" in p for p in declared.values()):
            return []
        parameters = {}
    from arm_engine import DeploymentScope, TemplateError, expand_template

    try:
        expand_template(
            doc,
            parameters={"parameters": dict(parameters)},
            scope=DeploymentScope(resource_group="lint"),
            template_source=file,
        )
    except TemplateError as exc:
        out = []
        for issue in exc.issues:
            line, col = (issue.line, issue.column) if issue.line is not None else locate(issue.path)
            where = f" (at {issue.path})" if issue.path else ""
            out.append(_error(issue.source or file, line, col, issue.code, issue.message + where))
        return out
    return []
