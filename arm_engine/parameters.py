"""Parameter values: read the shapes users hand in, apply defaults, and check them against the declarations.

Every problem with every parameter is collected into one ``TemplateError``, so a user fixes them in one pass.
Secure values never appear in a message.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any, Literal

from .errors import IssueCode, TemplateError, TemplateIssue
from .model import ParameterValue
from .values import Deferred

PARAMETER_TYPES = ("string", "securestring", "int", "bool", "object", "secureobject", "array")
_WRAPPER_KEYS = frozenset({"value", "reference", "metadata"})

Source = Literal["default", "file", "override", "reference"]


def read_parameters_document(doc: Any, *, source: str | None = None) -> dict[str, dict[str, Any]]:
    """``name → {"value": v}`` or ``name → {"reference": {...}}`` from a deploymentParameters document, the bare
    ``{name: {"value": v}}`` object, or ``{name: v}`` (the shapes the az CLI accepts)."""
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise TemplateError(
            TemplateIssue(
                IssueCode.PARAMETERS_FILE,
                'a parameters document must be a JSON object like {"parameters": {"name": {"value": ...}}}',
                source=source,
            )
        )
    if isinstance(doc.get("parameters"), dict) and ("$schema" in doc or "contentVersion" in doc or len(doc) == 1):
        entries = doc["parameters"]
    elif "parameters" in doc and ("$schema" in doc or "contentVersion" in doc):
        raise TemplateError(
            TemplateIssue(
                IssueCode.PARAMETERS_FILE,
                "the 'parameters' member of the parameters document must be an object",
                path="parameters",
                source=source,
            )
        )
    else:
        entries = {k: v for k, v in doc.items() if not k.startswith("$") and k != "contentVersion"}
    result: dict[str, dict[str, Any]] = {}
    for name, entry in entries.items():
        if isinstance(entry, dict) and entry and set(entry) <= _WRAPPER_KEYS and ({"value", "reference"} & set(entry)):
            if "reference" in entry and "value" not in entry:
                result[name] = {"reference": entry["reference"]}
            else:
                result[name] = {"value": entry["value"]}
        else:
            result[name] = {"value": entry}
    return result


def _lookup(mapping: dict[str, Any], name: str) -> str | None:
    """The key of ``mapping`` matching ``name`` case-insensitively (ARM's parameter names are)."""
    if name in mapping:
        return name
    lowered = name.lower()
    return next((k for k in mapping if k.lower() == lowered), None)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


class ParameterResolver:
    """Resolves a template's parameters lazily (a default may read other parameters) and validates them.

    ``evaluate_default(name, raw, path)`` evaluates a default value expression; the expander supplies it with a
    context whose ``parameter()`` calls back into ``value()``.
    """

    def __init__(
        self,
        declared: dict[str, Any],
        provided: dict[str, dict[str, Any]],
        overrides: dict[str, Any] | None,
        *,
        definitions: dict[str, Any] | None,
        evaluate_default: Callable[[str, Any, str], Any],
        parameters_source: str | None,
        template_source: str | None,
        path_prefix: str = "parameters",
        provided_path_prefix: str = "parameters",
    ) -> None:
        self.declared = declared if isinstance(declared, dict) else {}
        self.definitions = definitions if isinstance(definitions, dict) else {}
        self.evaluate_default = evaluate_default
        self.parameters_source = parameters_source
        self.template_source = template_source
        self.path_prefix = path_prefix
        self.provided_path_prefix = provided_path_prefix
        self.issues: list[TemplateIssue] = []
        self.values: dict[str, ParameterValue] = {}
        self._resolving: set[str] = set()
        self._failed: set[str] = set()
        self._inputs: dict[str, tuple[Any, Source]] = {}
        self._unknown: list[tuple[str, str | None, str]] = []
        for name, entry in provided.items():
            key = _lookup(self.declared, name)
            if key is None:
                self._unknown.append((name, parameters_source, f"{provided_path_prefix}.{name}"))
            elif "reference" in entry and "value" not in entry:
                self._inputs[key] = (entry["reference"], "reference")
            else:
                self._inputs[key] = (entry.get("value"), "file")
        for name, value in (overrides or {}).items():
            key = _lookup(self.declared, name)
            if key is None:
                self._unknown.append((name, "--param", name))
            else:
                self._inputs[key] = (value, "override")

    # ------------------------------------------------------------------------------------------- resolution

    def resolve_all(self) -> dict[str, ParameterValue]:
        """Every parameter's value, or a TemplateError with every problem found."""
        self._check_file_matches()
        for name in self.declared:
            self.value(name, soft=True)
        for name, source, path in self._unknown:
            where = f"the parameters file {source}" if source and source != "--param" else (source or "the input")
            declared = ", ".join(sorted(self.declared)) or "none"
            close = difflib.get_close_matches(name.lower(), {d.lower(): d for d in self.declared}, n=1)
            hint = f" Did you mean '{next(d for d in self.declared if d.lower() == close[0])}'?" if close else ""
            self.issues.append(
                TemplateIssue(
                    IssueCode.UNKNOWN_PARAMETER,
                    f"'{name}' is set by {where} but the template declares no such parameter "
                    f"(declared: {declared}).{hint} Remove it or fix its name.",
                    path=path if source != "--param" else "",
                    source=source if source != "--param" else None,
                    details={"parameter": name},
                )
            )
        if self.issues:
            raise TemplateError(self.issues)
        return {name: self.values[name] for name in self.declared if name in self.values}

    def _check_file_matches(self) -> None:
        """A parameters file whose names mostly miss the template was written for another template: say so
        once instead of listing every name."""
        from_file = [u for u in self._unknown if u[1] != "--param"]
        matched = sum(1 for _, (_, src) in self._inputs.items() if src in ("file", "reference"))
        if not from_file or len(from_file) <= matched:
            return
        missing = [n for n, d in self.declared.items() if n not in self._inputs and not _has_default_or_null(d)]
        if len(from_file) == 1 and not missing:
            return
        unknown = ", ".join(n for n, _, _ in from_file[:10])
        raise TemplateError(
            TemplateIssue(
                IssueCode.PARAMETERS_FILE,
                f"this parameters file seems to be for another template: it sets {unknown}, which the template "
                f"does not declare, and matches {matched} of the template's {len(self.declared)} parameters; "
                "pass the parameters file that belongs to this template",
                source=self.parameters_source,
                details={"unknown": [n for n, _, _ in from_file], "matched": matched},
            )
        )

    def value(self, name: str, *, soft: bool = False) -> Any:
        """The parameter's value; raises TemplateError(UndeclaredParameter) when the template has none."""
        key = _lookup(self.declared, name)
        if key is None:
            close = difflib.get_close_matches(name, list(self.declared), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise TemplateError(
                TemplateIssue(
                    IssueCode.UNDECLARED_PARAMETER,
                    f"the template has no parameter '{name}' "
                    f"(declared: {', '.join(sorted(self.declared)) or 'none'}){hint}",
                )
            )
        if key in self.values:
            return self.values[key].value
        if key in self._failed:
            if soft:
                return None
            raise TemplateError(
                TemplateIssue(IssueCode.INVALID_VALUE, f"parameter '{key}' has no valid value (see its own error)")
            )
        if key in self._resolving:
            raise TemplateError(
                TemplateIssue(
                    IssueCode.INVALID_TEMPLATE,
                    f"the default value of parameter '{key}' refers to itself through other parameters",
                    path=f"{self.path_prefix}.{key}.defaultValue",
                    source=self.template_source,
                )
            )
        self._resolving.add(key)
        try:
            resolved = self._resolve(key)
        finally:
            self._resolving.discard(key)
        if resolved is None:
            self._failed.add(key)
            if soft:
                return None
            raise TemplateError(
                TemplateIssue(IssueCode.INVALID_VALUE, f"parameter '{key}' has no valid value (see its own error)")
            )
        self.values[key] = resolved
        return resolved.value

    def _resolve(self, key: str) -> ParameterValue | None:
        decl = self.declared[key]
        if not isinstance(decl, dict):
            self.issues.append(
                TemplateIssue(
                    IssueCode.INVALID_TEMPLATE,
                    f"the declaration of parameter '{key}' must be an object with a 'type'",
                    path=f"{self.path_prefix}.{key}",
                    source=self.template_source,
                )
            )
            return None
        schema = self._deref(decl, f"{self.path_prefix}.{key}")
        if schema is None:
            return None
        declared_type = str(schema.get("type", "")).lower()
        if declared_type not in PARAMETER_TYPES:
            self.issues.append(
                TemplateIssue(
                    IssueCode.INVALID_TEMPLATE,
                    f"parameter '{key}' has type '{schema.get('type')}'; ARM parameter types are "
                    + ", ".join(PARAMETER_TYPES),
                    path=f"{self.path_prefix}.{key}.type",
                    source=self.template_source,
                )
            )
            return None
        source: Source
        given = self._inputs.get(key)
        if given is not None and given[0] is None and given[1] != "reference" and "defaultValue" in decl:
            given = None  # ARM treats a null value as not given: the default applies
        if given is not None:
            value, source = given
            from_file = source in ("file", "reference")
            where_path = f"{self.provided_path_prefix}.{key}" if from_file else ""
            where_source = self.parameters_source if from_file else f"--param {key}"
        elif "defaultValue" in decl or "defaultValue" in schema:
            raw = decl["defaultValue"] if "defaultValue" in decl else schema["defaultValue"]
            where_path = f"{self.path_prefix}.{key}.defaultValue"
            where_source = self.template_source
            try:
                value = self.evaluate_default(key, raw, where_path)
            except TemplateError as exc:
                self.issues.extend(_with_default_location(exc.issues, where_path, self.template_source, self.issues))
                return None
            source = "default"
        elif _is_nullable(schema):
            return ParameterValue(key, declared_type, None, "default")
        else:
            self.issues.append(
                TemplateIssue(
                    IssueCode.MISSING_PARAMETER,
                    f"the template needs a value for parameter '{key}' ({declared_type}) and none was given; "
                    "set it in the parameters file or with --param "
                    f"{key}=VALUE",
                    path=f"{self.path_prefix}.{key}",
                    source=self.template_source,
                    details={"parameter": key}
                    | ({"parameters_file": self.parameters_source} if self.parameters_source else {}),
                )
            )
            return None
        if source == "reference":
            if not isinstance(value, dict) or "keyVault" not in value or "secretName" not in value:
                self.issues.append(
                    TemplateIssue(
                        IssueCode.PARAMETER_TYPE,
                        f"parameter '{key}' is given as a Key Vault reference, which needs "
                        '{"keyVault": {"id": ...}, "secretName": ...}',
                        path=where_path,
                        source=where_source,
                    )
                )
                return None
            return ParameterValue(key, declared_type, value, "reference")
        secure = declared_type in ("securestring", "secureobject")
        problems = self.check(value, schema, secure=secure, depth=0)
        quoting_hint = source == "override" and declared_type in ("string", "securestring")
        if problems and quoting_hint and not isinstance(value, str):
            problems = [
                (code, f"{message} (--param values are read as JSON; quote a string: --param '{key}=\"...\"')")
                for code, message in problems
            ]
        if problems:
            for code, message in problems:
                self.issues.append(
                    TemplateIssue(
                        code,
                        f"parameter '{key}': {message}",
                        path=where_path,
                        source=where_source,
                        details={"parameter": key},
                    )
                )
            return None
        if declared_type == "int" and isinstance(value, float):
            value = int(value)
        return ParameterValue(key, declared_type, value, source)

    # ------------------------------------------------------------------------------------------- checking

    def _deref(self, schema: dict[str, Any], path: str, depth: int = 0) -> dict[str, Any] | None:
        ref = schema.get("$ref")
        if not isinstance(ref, str):
            return schema
        if depth > 32:
            self.issues.append(
                TemplateIssue(
                    IssueCode.INVALID_TEMPLATE,
                    f"the type reference '{ref}' loops",
                    path=path,
                    source=self.template_source,
                )
            )
            return None
        prefix = "#/definitions/"
        name = ref[len(prefix) :] if ref.startswith(prefix) else None
        target_key = _lookup(self.definitions, name) if name else None
        if target_key is None or not isinstance(self.definitions[target_key], dict):
            self.issues.append(
                TemplateIssue(
                    IssueCode.INVALID_TEMPLATE,
                    f"the type reference '{ref}' names no entry of the template's definitions",
                    path=f"{path}.$ref",
                    source=self.template_source,
                )
            )
            return None
        target = self._deref(self.definitions[target_key], path, depth + 1)
        if target is None:
            return None
        merged = dict(target)
        merged.update({k: v for k, v in schema.items() if k != "$ref"})
        return merged

    def check(
        self, value: Any, schema: dict[str, Any], *, secure: bool, depth: int, at: str = ""
    ) -> list[tuple[str, str]]:
        """Problems of ``value`` against a parameter (or user-defined type) schema, as (code, message)."""
        if isinstance(value, Deferred) or depth > 64:
            return []
        resolved = self._deref(schema, at or "parameter", depth)
        if resolved is None:
            return []
        schema = resolved
        where = f" at {at}" if at else ""
        if value is None:
            if _is_nullable(schema):
                return []
            declared = str(schema.get("type", "value")).lower()
            return [(IssueCode.PARAMETER_TYPE, f"expected a {declared}{where}, got null")]
        declared = str(schema.get("type", "")).lower()
        kind = _kind(value)
        if declared and not _type_matches(declared, value):
            return [
                (IssueCode.PARAMETER_TYPE, f"expected a {declared}{where}, got {'a' if kind != 'int' else 'an'} {kind}")
            ]
        problems: list[tuple[str, str]] = []
        allowed = schema.get("allowedValues")
        if isinstance(allowed, list) and allowed:
            items = value if isinstance(value, list) and declared == "array" else [value]
            bad = [v for v in items if not any(_arm_equal(v, a) for a in allowed)]
            if bad:
                shown = "the given value" if secure else ", ".join(_show(v) for v in bad[:5])
                choices = ", ".join(_show(a) for a in allowed[:20])
                problems.append(
                    (
                        IssueCode.PARAMETER_NOT_ALLOWED_VALUE,
                        f"{shown}{where} is not one of the allowed values: {choices}",
                    )
                )
        if (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, float):
            lo, hi = schema.get("minValue"), schema.get("maxValue")
            if isinstance(lo, int) and value < lo:
                problems.append(
                    (IssueCode.PARAMETER_OUT_OF_RANGE, f"{_shown(value, secure)}{where} is less than the minimum {lo}")
                )
            if isinstance(hi, int) and value > hi:
                problems.append(
                    (IssueCode.PARAMETER_OUT_OF_RANGE, f"{_shown(value, secure)}{where} is more than the maximum {hi}")
                )
        if isinstance(value, str | list):
            lo, hi = schema.get("minLength"), schema.get("maxLength")
            unit = "characters" if isinstance(value, str) else "items"
            if isinstance(lo, int) and len(value) < lo:
                problems.append(
                    (IssueCode.PARAMETER_OUT_OF_RANGE, f"the value{where} has {len(value)} {unit}; the minimum is {lo}")
                )
            if isinstance(hi, int) and len(value) > hi:
                problems.append(
                    (IssueCode.PARAMETER_OUT_OF_RANGE, f"the value{where} has {len(value)} {unit}; the maximum is {hi}")
                )
        if isinstance(value, list):
            prefix_items = schema.get("prefixItems")
            if isinstance(prefix_items, list):
                for i, item_schema in enumerate(prefix_items):
                    if i < len(value) and isinstance(item_schema, dict):
                        problems += self.check(value[i], item_schema, secure=secure, depth=depth + 1, at=f"{at}[{i}]")
            items_schema = schema.get("items")
            start = len(prefix_items) if isinstance(prefix_items, list) else 0
            if items_schema is False and len(value) > start:
                problems.append((IssueCode.PARAMETER_TYPE, f"the array{where} allows no more than {start} items"))
            elif isinstance(items_schema, dict):
                for i in range(start, len(value)):
                    problems += self.check(value[i], items_schema, secure=secure, depth=depth + 1, at=f"{at}[{i}]")
        if isinstance(value, dict):
            problems += self._check_object(value, schema, secure=secure, depth=depth, at=at)
        return problems

    def _check_object(
        self, value: dict[str, Any], schema: dict[str, Any], *, secure: bool, depth: int, at: str
    ) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        discriminator = schema.get("discriminator")
        if isinstance(discriminator, dict) and isinstance(discriminator.get("mapping"), dict):
            prop = str(discriminator.get("propertyName", ""))
            tag_key = _lookup(value, prop)
            tag = value.get(tag_key) if tag_key else None
            mapping = discriminator["mapping"]
            variant_key = _lookup(mapping, tag) if isinstance(tag, str) else None
            if variant_key is None:
                choices = ", ".join(_show(k) for k in mapping)
                return [
                    (
                        IssueCode.PARAMETER_TYPE,
                        f"the object{' at ' + at if at else ''} needs '{prop}' set to one of {choices}",
                    )
                ]
            variant = self._deref(mapping[variant_key], at or "parameter", depth + 1) or {}
            merged = {k: v for k, v in schema.items() if k != "discriminator"}
            merged["properties"] = {**(schema.get("properties") or {}), **(variant.get("properties") or {})}
            if "additionalProperties" in variant:
                merged["additionalProperties"] = variant["additionalProperties"]
            schema = merged
        properties = schema.get("properties")
        if isinstance(properties, dict):
            for prop_name, prop_schema in properties.items():
                if not isinstance(prop_schema, dict):
                    continue
                key = _lookup(value, prop_name)
                sub = f"{at}.{prop_name}" if at else prop_name
                if key is None:
                    resolved = self._deref(prop_schema, sub, depth + 1) or {}
                    if not _is_nullable(resolved):
                        problems.append(
                            (
                                IssueCode.PARAMETER_TYPE,
                                f"the object{' at ' + at if at else ''} needs the property '{prop_name}'",
                            )
                        )
                    continue
                problems += self.check(value[key], prop_schema, secure=secure, depth=depth + 1, at=sub)
        additional = schema.get("additionalProperties")
        known = {k.lower() for k in properties} if isinstance(properties, dict) else set()
        extra = [k for k in value if k.lower() not in known]
        if additional is False and extra and isinstance(properties, dict):
            problems.append(
                (
                    IssueCode.PARAMETER_TYPE,
                    f"the object{' at ' + at if at else ''} does not allow the properties {', '.join(extra[:10])}",
                )
            )
        elif isinstance(additional, dict):
            for k in extra:
                problems += self.check(
                    value[k], additional, secure=secure, depth=depth + 1, at=f"{at}.{k}" if at else k
                )
        return problems


def _with_default_location(
    issues: list[TemplateIssue], path: str, source: str | None, already: list[TemplateIssue]
) -> list[TemplateIssue]:
    result = []
    for issue in issues:
        if issue in already:
            continue
        if not issue.path:
            issue = TemplateIssue(
                issue.code, issue.message, path, issue.source or source, issue.line, issue.column, issue.details
            )
        elif issue.source is None:
            issue = TemplateIssue(
                issue.code, issue.message, issue.path, source, issue.line, issue.column, issue.details
            )
        result.append(issue)
    return result


def _is_nullable(schema: dict[str, Any]) -> bool:
    return schema.get("nullable") is True


def _has_default_or_null(decl: Any) -> bool:
    return isinstance(decl, dict) and ("defaultValue" in decl or decl.get("nullable") is True)


def _type_matches(declared: str, value: Any) -> bool:
    if declared in ("string", "securestring"):
        return isinstance(value, str)
    if declared == "int":
        if isinstance(value, bool):
            return False
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if declared == "bool":
        return isinstance(value, bool)
    if declared in ("object", "secureobject"):
        return isinstance(value, dict)
    if declared == "array":
        return isinstance(value, list)
    return declared == "any" or declared not in PARAMETER_TYPES


def _arm_equal(a: Any, b: Any) -> bool:
    """allowedValues comparison: strings case-insensitively (as ARM), containers structurally."""
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_arm_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        if len(a) != len(b):
            return False
        lowered = {k.lower(): v for k, v in b.items()}
        return all(k.lower() in lowered and _arm_equal(v, lowered[k.lower()]) for k, v in a.items())
    return bool(a == b)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return str(value)
    return "an " + _kind(value)


def _shown(value: Any, secure: bool) -> str:
    return "the given value" if secure else _show(value)
