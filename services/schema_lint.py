"""ARM JSON resources checked against Azure's own type schemas (``azure_types``, from Azure/bicep-types-az).

For each resource (top level, child ``resources``, inline nested deployments, copy loops and property copies) the
body is compared with the schema of its type and api-version. Every finding is a warning — ARM and the resource
provider decide at deploy time, and the schema is generated from swagger that is not always complete:

- ``UnknownResourceType`` / ``UnknownApiVersion``: the schema knows neither (nearest types / versions listed);
- ``UnknownProperty``: a property the type's object does not declare (and that takes no additional properties),
  with the nearest known names;
- ``WrongValueKind``: a string where the schema wants a number, an object where it wants an array, …;
- ``ValueNotAllowed``: a value outside a closed enum (compared case-insensitively, as providers do);
- ``ReadOnlyPropertySet``: a property the provider computes (``provisioningState``, ``primaryEndpoints``);
- ``RequiredPropertyMissing``: a required property of an object the template writes.

Expressions (``[...]``) are not judged: their value is known only at deploy time. Neither is anything below an
expression, nor the body of an ``existing`` resource. Importing this module reads no schema; the first resource of
a namespace reads that namespace's schema (see ``azure_types``).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Any

import azure_types
from services.bicep import Diagnostic, DiagnosticLevel

Locate = Callable[[str], tuple[int | None, int | None]]

# Keys of a template resource that are the template's, not the resource body's.
_TEMPLATE_KEYS = frozenset(
    {
        "condition",
        "copy",
        "dependson",
        "comments",
        "resources",
        "scope",
        "metadata",
        "existing",
        "import",
        "apiversion",
        # the target of a nested deployment
        "subscriptionid",
        "resourcegroup",
    }
)
_DEPLOYMENTS = "microsoft.resources/deployments"
_MAX_DEPTH = 40
# How close (difflib ratio) a string must be to a known value of an open enum to be reported as a likely typo.
_NEAR_MISS = 0.85


def _child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if key.isidentifier():
        return f"{path}.{key}" if path else key
    return f"{path}['{key}']"


def _is_expression(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("[") and not value.startswith("[[") and value.endswith("]")


def check_resource_schemas(doc: dict[str, Any], file: str, locate: Locate) -> list[Diagnostic]:
    """Warnings for every resource of ``doc`` (and of its inline nested templates) that its schema does not allow."""
    checker = _Checker(file, locate)
    checker.template(doc, "")
    return checker.found


class _Checker:
    def __init__(self, file: str, locate: Locate) -> None:
        self.file = file
        self.locate = locate
        self.found: list[Diagnostic] = []
        self._schemas: dict[tuple[str, str], azure_types.TypeSchema] = {}

    def warn(self, path: str, code: str, message: str) -> None:
        line, col = self.locate(path)
        self.found.append(
            Diagnostic(
                file=self.file,
                line=line,
                col=col,
                level=DiagnosticLevel.WARNING,
                code=code,
                message=f"{message} (at {path})",
            )
        )

    # -- templates and resources ------------------------------------------------------------------------------
    def template(self, doc: dict[str, Any], base: str) -> None:
        key = next((k for k in doc if k.lower() == "resources"), None)
        if key is None:
            return
        resources = doc[key]
        path = _child(base, key)
        if isinstance(resources, dict):  # languageVersion 2.0: symbolic names
            items: list[tuple[str | int, Any]] = list(resources.items())
        elif isinstance(resources, list):
            items = list(enumerate(resources))
        else:
            return
        for k, res in items:
            if isinstance(res, dict):
                self.resource(res, _child(path, k), parent_type=None)

    def resource(self, res: dict[str, Any], path: str, *, parent_type: str | None) -> None:
        rtype, version = res.get("type"), res.get("apiVersion")
        if not isinstance(rtype, str) or _is_expression(rtype):
            return
        full_type = rtype
        if parent_type is not None and "." not in rtype.split("/", 1)[0]:
            full_type = f"{parent_type}/{rtype}"  # a child resource declares its type relative to its parent
        for i, child in enumerate(res.get("resources") or [] if isinstance(res.get("resources"), list) else []):
            if isinstance(child, dict):
                self.resource(child, _child(_child(path, "resources"), i), parent_type=full_type)
        if full_type.lower() == _DEPLOYMENTS:
            props = res.get("properties")
            if isinstance(props, dict) and isinstance(props.get("template"), dict):
                self.template(props["template"], _child(_child(path, "properties"), "template"))
        if not isinstance(version, str) or _is_expression(version):
            return
        schema = self.schema(full_type, version, path)
        if schema is None or res.get("existing") is True:
            return
        self.body(schema, res, path)

    def schema(self, full_type: str, version: str, path: str) -> azure_types.TypeSchema | None:
        key = (full_type.lower(), version.lower())
        cached = self._schemas.get(key)
        if cached is not None:
            return cached
        versions = azure_types.known_versions(full_type)
        if versions is None:
            if full_type.count("/") < 1:
                return None
            namespace = azure_types.namespace(full_type.split("/", 1)[0])
            candidates = list(namespace.resources) if namespace is not None else []
            near = difflib.get_close_matches(full_type.lower(), candidates, n=3, cutoff=0.75)
            hint = f"; nearest known: {', '.join(_spell(namespace, t) for t in near)}" if near else ""
            where = "" if namespace is not None else f" (no provider namespace '{full_type.split('/', 1)[0]}')"
            self.warn(
                _child(path, "type"),
                "UnknownResourceType",
                f"the resource type '{full_type}' is not in Azure's type schemas{where}{hint}",
            )
            return None
        if version.lower() not in versions:
            near = azure_types.nearest_versions(versions, version, 3)
            self.warn(
                _child(path, "apiVersion"),
                "UnknownApiVersion",
                f"'{full_type}' has no api-version '{version}' in Azure's type schemas; nearest known: "
                f"{', '.join(near)} (newest: {versions[-1]})",
            )
            return None
        found = azure_types.lookup(full_type, version, nearest=False)
        if found is not None:
            self._schemas[key] = found
        return found

    def body(self, schema: azure_types.TypeSchema, res: dict[str, Any], path: str) -> None:
        body_node = schema.body_node
        selector = res
        if body_node["k"] == "disc":
            # Some types are discriminated by their name (Microsoft.Web/sites/config: 'web', 'appsettings', ...):
            # the child's own name segment selects the variant. An expression selects it only at deploy time.
            chosen = res.get(body_node["d"])
            if body_node["d"].lower() == "name" and isinstance(chosen, str) and not _is_expression(chosen):
                selector = {body_node["d"]: chosen.rsplit("/", 1)[-1]}
            if not isinstance(selector.get(body_node["d"]), str) or _is_expression(selector.get(body_node["d"])):
                return
            variants = body_node.get("e", {})
            if variants and not _ci_has(variants, selector[body_node["d"]]):
                if body_node["d"].lower() != "name":  # a name outside the known variants is a name, not a mistake
                    self.warn(
                        _child(path, body_node["d"]),
                        "ValueNotAllowed",
                        f"'{body_node['d']}' is {_show(selector[body_node['d']])}; {schema.type_name}@"
                        f"{schema.api_version} accepts {', '.join(sorted(variants))}",
                    )
                return
        props = schema.namespace.properties(body_node, selector)
        lower = _lower_index(props)
        label = f"{schema.type_name}@{schema.api_version}"
        for key, value in res.items():
            lkey = key.lower()
            if lkey in _TEMPLATE_KEYS or lkey in ("type", "name", "id"):
                continue
            p = _child(path, key)
            if lkey not in lower:
                if body_node.get("ap") is None:
                    self.unknown(p, key, _writable(props), label)
                continue
            ref, flags = props[lower[lkey]]
            if flags & azure_types.READ_ONLY:
                self.warn(p, "ReadOnlyPropertySet", f"'{key}' of {label} is read-only: the provider sets it")
                continue
            self.value(schema.namespace, ref, value, p, label, 0, set())
        self.required(
            schema.namespace, props, res, path, label, skip=_TEMPLATE_KEYS | {"type", "name", "id", "apiversion"}
        )

    # -- values ------------------------------------------------------------------------------------------------
    def value(
        self, ns: azure_types.Namespace, ref: int, value: Any, path: str, label: str, depth: int, seen: set[int]
    ) -> None:
        if _is_expression(value) or depth > _MAX_DEPTH:
            return
        node = ns.nodes[ref]
        kind = node["k"]
        if kind == "any" or value is None:
            return
        if kind == "str":
            if not isinstance(value, str):
                self.wrong_kind(path, value, "a string", label)
        elif kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                self.wrong_kind(path, value, "an integer", label)
        elif kind == "bool":
            if not isinstance(value, bool):
                self.wrong_kind(path, value, "true or false", label)
        elif kind == "lit":
            if not (isinstance(value, str) and value.lower() == str(node["v"]).lower()):
                self.warn(path, "ValueNotAllowed", f"{_show(value)} is not allowed here in {label}: only '{node['v']}'")
        elif kind == "union":
            self.union(ns, node, value, path, label, depth, seen)
        elif kind == "arr":
            if not isinstance(value, list):
                self.wrong_kind(path, value, "an array", label)
                return
            for i, item in enumerate(value):
                self.value(ns, node["item"], item, _child(path, i), label, depth + 1, seen)
        elif kind in ("obj", "disc"):
            if not isinstance(value, dict):
                self.wrong_kind(path, value, "an object", label)
                return
            self.object(ns, node, value, path, label, depth, seen)

    def union(
        self,
        ns: azure_types.Namespace,
        node: dict[str, Any],
        value: Any,
        path: str,
        label: str,
        depth: int,
        seen: set[int],
    ) -> None:
        members = [ns.nodes[i] for i in node["of"]]
        literals = [str(m["v"]) for m in members if m["k"] == "lit"]
        others = [i for i, m in zip(node["of"], members, strict=True) if m["k"] != "lit"]
        if isinstance(value, str):
            if any(v.lower() == value.lower() for v in literals):
                return
            if any(ns.nodes[i]["k"] in ("str", "any") for i in others):
                # An open enum: the literals are known values and any string is accepted, but one that is a
                # near miss of a known value (Standard_LRSS, Dynamc) is most likely a typo.
                by_lower = {v.lower(): v for v in literals}
                near = difflib.get_close_matches(value.lower(), list(by_lower), n=1, cutoff=_NEAR_MISS)
                if near and not _is_expression(value):
                    shown = ", ".join(literals[:8]) + (", …" if len(literals) > 8 else "")
                    self.warn(
                        path,
                        "ValueNotAllowed",
                        f"'{value}' is not a known value here in {label}; did you mean '{by_lower[near[0]]}'? "
                        f"(known: {shown}; other strings are passed on to the provider)",
                    )
                return
            if literals and not others:
                self.warn(path, "ValueNotAllowed", f"'{value}' is not one of {', '.join(literals)} (in {label})")
                return
        kinds = {ns.nodes[i]["k"] for i in others}
        if not others:
            self.wrong_kind(path, value, "one of " + ", ".join(literals), label)
            return
        if len(others) == 1:
            self.value(ns, others[0], value, path, label, depth, seen)
            return
        if _matches_any_kind(value, kinds):
            return
        self.wrong_kind(path, value, " or ".join(sorted(_kind_words(kinds))), label)

    def object(
        self,
        ns: azure_types.Namespace,
        node: dict[str, Any],
        value: dict[str, Any],
        path: str,
        label: str,
        depth: int,
        seen: set[int],
    ) -> None:
        props = ns.properties(node, value)
        if node["k"] == "disc":
            disc_value = value.get(node["d"])
            variants = node.get("e", {})
            if _is_expression(disc_value) or not variants:
                return  # which variant applies is known only at deploy time
            if disc_value is None or not any(str(disc_value).lower() == v.lower() for v in variants):
                where = _child(path, node["d"]) if node["d"] in value else path
                shown = "missing" if disc_value is None else f"{_show(disc_value)}"
                self.warn(
                    where,
                    "ValueNotAllowed",
                    f"'{node['d']}' is {shown}; {label} accepts {', '.join(sorted(variants))}",
                )
                return
        lower = _lower_index(props)
        additional = node.get("ap")
        nodes = ns.nodes
        for key, item, copy_index in _with_property_copies(value):
            declared = lower.get(key.lower())
            if declared is not None and copy_index is None:
                ref, flags = props[declared]
                if not flags & azure_types.READ_ONLY and _plainly_fits(nodes, nodes[ref], item):
                    continue  # the common case: no finding possible, no path built
            p = _child(path, key) if copy_index is None else _child(_child(_child(path, "copy"), copy_index), "input")
            if declared is None:
                if additional is not None and copy_index is None:
                    self.value(ns, additional, item, p, label, depth + 1, seen)
                elif additional is None and (node["k"] != "disc" or props):
                    where = p if copy_index is None else _child(_child(_child(path, "copy"), copy_index), "name")
                    self.unknown(where, key, _writable(props), label)
                continue
            ref, flags = props[declared]
            if flags & azure_types.READ_ONLY:
                if not _is_reference_id(declared, node):
                    self.warn(p, "ReadOnlyPropertySet", f"'{key}' of {label} is read-only: the provider sets it")
                continue
            if copy_index is not None:  # a property copy's input is one element of the array it builds
                target = nodes[ref]
                if target["k"] == "arr":
                    self.value(ns, target["item"], item, p, label, depth + 1, seen)
                elif target["k"] in ("str", "int", "bool", "obj", "disc", "lit"):
                    name_path = _child(_child(_child(path, "copy"), copy_index), "name")
                    self.wrong_kind(name_path, [], _kind_words({target["k"]}).pop(), label)
                continue
            self.value(ns, ref, item, p, label, depth + 1, seen)
        self.required(ns, props, value, path, label, skip=frozenset())

    # -- findings ----------------------------------------------------------------------------------------------
    def unknown(self, path: str, key: str, known: list[str], label: str) -> None:
        writable = [k for k in known if k.lower() not in ("id", "type", "apiversion")]
        near = difflib.get_close_matches(key, writable, n=3, cutoff=0.6)
        if not near:
            near = [k for k in writable if k.lower() == key.lower()] or []
        hint = f"; did you mean {', '.join(repr(n) for n in near)}?" if near else ""
        if not hint and writable:
            shown = ", ".join(writable[:8]) + (", …" if len(writable) > 8 else "")
            hint = f"; known: {shown}"
        self.warn(path, "UnknownProperty", f"'{key}' is not a property of {label}{hint}")

    def wrong_kind(self, path: str, value: Any, wanted: str, label: str) -> None:
        self.warn(path, "WrongValueKind", f"{_show(value)} is {_kind_of(value)}, but {label} expects {wanted} here")

    def required(
        self,
        ns: azure_types.Namespace,
        props: dict[str, list[int]],
        value: dict[str, Any],
        path: str,
        label: str,
        *,
        skip: frozenset[str],
    ) -> None:
        needed = _required(props)
        if not needed:
            return
        present = {k.lower() for k, _, _ in _with_property_copies(value)}
        for name, ref in needed:
            if name.lower() not in present and name.lower() not in skip and not _empty_allowed(ns, ref):
                self.warn(
                    path or "resources",
                    "RequiredPropertyMissing",
                    f"{label} requires '{name}' here (ARM decides at deploy time)",
                )


def _writable(props: dict[str, list[int]]) -> list[str]:
    return [name for name, (_, flags) in props.items() if not flags & azure_types.READ_ONLY]


def _ci_has(mapping: dict[str, Any], key: str) -> bool:
    return any(k.lower() == key.lower() for k in mapping)


def _empty_allowed(ns: azure_types.Namespace, ref: int) -> bool:
    """A required object that requires nothing itself: leaving it out is sending it empty, which providers take."""
    node = ns.nodes[ref]
    if node["k"] != "obj":
        return False
    return not any(
        flags & azure_types.REQUIRED and not flags & azure_types.READ_ONLY for _, flags in node.get("p", {}).values()
    )


def _with_property_copies(value: dict[str, Any]) -> Iterator[tuple[str, Any, int | None]]:
    """An object's properties as (name, value, index of the property copy or None): ``"copy": [{"name", "count",
    "input"}]`` yields each input under the name of the array property it builds."""
    for key, item in value.items():
        if key.lower() == "copy" and isinstance(item, list) and all(isinstance(c, dict) and "name" in c for c in item):
            for i, c in enumerate(item):
                if isinstance(c.get("name"), str) and not _is_expression(c["name"]):
                    yield c["name"], c.get("input"), i
            continue
        yield key, item, None


_LOWER: dict[int, dict[str, str]] = {}
_REQUIRED: dict[int, list[tuple[str, int]]] = {}


def _lower_index(props: dict[str, list[int]]) -> dict[str, str]:
    """lower-cased name → name, cached per properties table (the schema's tables live as long as the process)."""
    key = id(props)
    found = _LOWER.get(key)
    if found is None:
        found = _LOWER[key] = {k.lower(): k for k in props}
    return found


def _required(props: dict[str, list[int]]) -> list[tuple[str, int]]:
    key = id(props)
    found = _REQUIRED.get(key)
    if found is None:
        found = _REQUIRED[key] = [
            (name, ref)
            for name, (ref, flags) in props.items()
            if flags & azure_types.REQUIRED and not flags & azure_types.READ_ONLY
        ]
    return found


def _plainly_fits(nodes: list[dict[str, Any]], node: dict[str, Any], item: Any) -> bool:
    """True when ``item`` certainly gives no finding against ``node`` (a scalar of the right kind, an expression)."""
    kind = node["k"]
    if kind == "str":
        return isinstance(item, str)
    if isinstance(item, str) and item.startswith("[") and not item.startswith("[[") and item.endswith("]"):
        return True
    if kind == "any" or item is None:
        return True
    if kind == "bool":
        return isinstance(item, bool)
    if kind == "int":
        return isinstance(item, int) and not isinstance(item, bool)
    return False


def _is_reference_id(name: str, node: dict[str, Any]) -> bool:
    """``{"id": ...}`` of a sub-resource reference is what a template writes to point at it, though the schema
    marks the referenced resource's ``id`` read-only in some types."""
    return name.lower() == "id"


def _matches_any_kind(value: Any, kinds: set[str]) -> bool:
    if "any" in kinds:
        return True
    checks = {
        "str": isinstance(value, str),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "arr": isinstance(value, list),
        "obj": isinstance(value, dict),
        "disc": isinstance(value, dict),
    }
    return any(checks.get(k, False) for k in kinds)


def _kind_words(kinds: set[str]) -> set[str]:
    words = {"str": "a string", "int": "an integer", "bool": "true or false", "arr": "an array", "obj": "an object"}
    return {words.get(k, "an object") for k in kinds}


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:37] + "...")
    if isinstance(value, (dict, list)):
        return "{…}" if isinstance(value, dict) else "[…]"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _spell(namespace: azure_types.Namespace | None, lower_type: str) -> str:
    if namespace is None:
        return lower_type
    versions = namespace.resources.get(lower_type, {})
    return next((str(e["type"]) for e in reversed(versions.values())), lower_type)
