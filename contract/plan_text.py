"""The what-if plan as text, in the notation az users already read.

::

    Resource and property changes are indicated with these symbols:
      + Create
      ~ Modify

    The deployment will update the following scope:

    Scope: /subscriptions/…/resourceGroups/my-resource-group

      + Microsoft.ManagedIdentity/userAssignedIdentities/myNewIdentity [2018-11-30]
      ~ Microsoft.ManagedIdentity/userAssignedIdentities/myExistingIdentity [2018-11-30]
        + tags.myNewTag: "my tag value"

    Resource changes: 1 to create, 1 to modify.

Input is the list of ``WhatIfChange`` documents as ARM returns them (camelCase keys) or as the SDK's ``as_dict()``
gives them (snake_case keys); both are read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

# change type → (symbol, sort order, summary phrase); az's order: destructive first, quiet last.
_CHANGE_TYPES: dict[str, tuple[str, int, str]] = {
    "Delete": ("-", 0, "to delete"),
    "Create": ("+", 1, "to create"),
    "Deploy": ("!", 2, "to deploy"),
    "Modify": ("~", 3, "to modify"),
    "Unsupported": ("x", 4, "unsupported"),
    "NoChange": ("=", 5, "no change"),
    "Ignore": ("*", 6, "to ignore"),
}
_PROPERTY_CHANGE_TYPES: dict[str, tuple[str, int]] = {
    "Delete": ("-", 0),
    "Create": ("+", 1),
    "Modify": ("~", 2),
    "Array": ("~", 2),
    "NoEffect": ("x", 3),
}

_ALIGN_LIMIT = 48

# Change types that alter Azure when deployed; a plan with none of these has no changes.
CHANGING_TYPES = frozenset({"Create", "Delete", "Modify", "Deploy"})


def _get(doc: Mapping[str, Any], camel: str, snake: str | None = None) -> Any:
    if camel in doc:
        return doc[camel]
    return doc.get(snake or _snake(camel))


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def _normalize_change_type(value: Any) -> str:
    text = str(getattr(value, "value", value) or "")
    for known in _CHANGE_TYPES:
        if text.lower() == known.lower():
            return known
    return text or "Unsupported"


def _normalize_property_change_type(value: Any) -> str:
    text = str(getattr(value, "value", value) or "")
    for known in _PROPERTY_CHANGE_TYPES:
        if text.lower() == known.lower():
            return known
    return text


def change_counts(changes: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for change in changes:
        kind = _normalize_change_type(_get(change, "changeType"))
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def plan_has_changes(changes: Iterable[Mapping[str, Any]]) -> bool:
    return any(kind in CHANGING_TYPES for kind in change_counts(changes))


def summary_line(counts: Mapping[str, int]) -> str:
    """'Resource changes: 1 to delete, 2 to create, 1 no change.' (az's wording)."""
    parts = [
        f"{counts[kind]} {phrase}"
        for kind, (_sym, _order, phrase) in sorted(_CHANGE_TYPES.items(), key=lambda kv: kv[1][1])
        if counts.get(kind)
    ]
    parts += [f"{n} {kind}" for kind, n in sorted(counts.items()) if kind not in _CHANGE_TYPES and n]
    if not parts:
        return "Resource changes: none."
    return "Resource changes: " + ", ".join(parts) + "."


def _split_resource_id(resource_id: str) -> tuple[str, str]:
    """'/subscriptions/s/resourceGroups/rg/providers/Microsoft.X/y/z' → ('/subscriptions/s/resourceGroups/rg',
    'Microsoft.X/y/z'). Ids of nested providers keep everything after the first '/providers/'."""
    marker = "/providers/"
    idx = resource_id.lower().find(marker)
    if idx == -1:
        return resource_id, resource_id
    return resource_id[:idx], resource_id[idx + len(marker) :]


def _format_value(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return "null"
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested objects as dotted paths (az prints payloads this way); arrays of scalars stay on one line."""
    if isinstance(value, Mapping):
        if not value:
            return [(prefix, {})] if prefix else []
        rows: list[tuple[str, Any]] = []
        for key in sorted(value, key=str):
            rows += _flatten(value[key], f"{prefix}.{key}" if prefix else str(key))
        return rows
    if isinstance(value, list) and any(isinstance(v, Mapping | list) for v in value):
        rows = []
        for i, item in enumerate(value):
            rows += _flatten(item, f"{prefix}[{i}]")
        return rows
    return [(prefix, value)]


def _payload_lines(payload: Mapping[str, Any], indent: str) -> list[str]:
    rows = _flatten(payload)
    if not rows:
        return []
    # Align values like az does, but do not let one very long path (a resource id used as a key) push every
    # value off the screen.
    width = max((len(path) for path, _ in rows if len(path) <= _ALIGN_LIMIT), default=0) + 1
    return ["", *[f"{indent}{(path + ':').ljust(width)} {_format_value(v)}" for path, v in rows], ""]


def _property_lines(delta: Iterable[Mapping[str, Any]], indent: str) -> list[str]:
    lines: list[str] = []
    ordered = sorted(
        delta,
        key=lambda d: (
            _PROPERTY_CHANGE_TYPES.get(_normalize_property_change_type(_get(d, "propertyChangeType")), ("", 9))[1],
            str(_get(d, "path") or ""),
        ),
    )
    for prop in ordered:
        kind = _normalize_property_change_type(_get(prop, "propertyChangeType"))
        symbol = _PROPERTY_CHANGE_TYPES.get(kind, ("?", 9))[0]
        path = str(_get(prop, "path") or "")
        before, after = _get(prop, "before"), _get(prop, "after")
        children = _get(prop, "children") or []
        if kind == "Array" or children:
            lines.append(f"{indent}{symbol} {path}: [")
            lines += _property_lines(children, indent + "  ")
            lines.append(f"{indent}  ]")
        elif kind == "Create":
            lines += _value_lines(symbol, path, after, indent)
        elif kind == "Delete":
            lines += _value_lines(symbol, path, before, indent)
        elif kind == "Modify":
            if isinstance(before, Mapping) or isinstance(after, Mapping):
                lines.append(f"{indent}{symbol} {path}:")
                lines += _value_lines("-", "", before, indent + "  ")
                lines += _value_lines("+", "", after, indent + "  ")
            else:
                lines.append(f"{indent}{symbol} {path}: {_format_value(before)} => {_format_value(after)}")
        else:  # NoEffect and anything newer: show what the template asked for
            lines += _value_lines(symbol, path, after if after is not None else before, indent)
    return lines


def _value_lines(symbol: str, path: str, value: Any, indent: str) -> list[str]:
    if isinstance(value, Mapping) and value:
        head = f"{indent}{symbol} {path}:" if path else f"{indent}{symbol}"
        return [head, *_payload_lines(value, indent + "    ")]
    if path:
        return [f"{indent}{symbol} {path}: {_format_value(value)}"]
    return [f"{indent}{symbol} {_format_value(value)}"]


def render_plan(
    changes: Iterable[Mapping[str, Any]],
    *,
    show_payloads: bool = True,
    legend: bool = True,
) -> str:
    """The what-if result as az prints it: a legend, changes grouped by scope, a summary line.

    ``show_payloads`` prints the full resource body under Create and Delete (az does with FullResourcePayloads).
    """
    items = list(changes)
    counts = change_counts(items)
    out: list[str] = []
    if legend:
        names: dict[str, str] = {}
        for change in items:
            kind = _normalize_change_type(_get(change, "changeType"))
            names.setdefault(_CHANGE_TYPES.get(kind, ("x", 9, ""))[0], kind)
            for prop in _walk_delta(_get(change, "delta") or []):
                pkind = _normalize_property_change_type(prop)
                names.setdefault(
                    _PROPERTY_CHANGE_TYPES.get(pkind, ("?", 9))[0], "Modify" if pkind == "Array" else pkind
                )
        used = [s for s in ["-", "+", "~", "!", "x", "=", "*"] if s in names]
        if used:
            out.append("Resource and property changes are indicated with these symbols:")
            out += [f"  {s} {names[s]}" for s in used]
            out.append("")
    if not items:
        out.append("The deployment will not change any resources.")
        out.append("")
        out.append(summary_line(counts))
        return "\n".join(out) + "\n"

    by_scope: dict[str, list[Mapping[str, Any]]] = {}
    for change in items:
        scope, _rel = _split_resource_id(str(_get(change, "resourceId") or ""))
        by_scope.setdefault(scope, []).append(change)
    out.append(
        "The deployment will update the following scope:"
        if len(by_scope) == 1
        else "The deployment will update the following scopes:"
    )
    for scope in sorted(by_scope, key=str.lower):
        out.append("")
        out.append(f"Scope: {scope}")
        out.append("")
        ordered = sorted(
            by_scope[scope],
            key=lambda c: (
                _CHANGE_TYPES.get(_normalize_change_type(_get(c, "changeType")), ("", 9, ""))[1],
                str(_get(c, "resourceId") or "").lower(),
            ),
        )
        for change in ordered:
            out += _change_lines(change, show_payloads=show_payloads)
    out.append("")
    out.append(summary_line(counts))
    return "\n".join(_collapse_blank_lines(out)) + "\n"


def _walk_delta(delta: Iterable[Mapping[str, Any]]) -> Iterable[str]:
    for prop in delta:
        yield str(getattr(_get(prop, "propertyChangeType"), "value", _get(prop, "propertyChangeType")))
        yield from _walk_delta(_get(prop, "children") or [])


def _change_lines(change: Mapping[str, Any], *, show_payloads: bool) -> list[str]:
    kind = _normalize_change_type(_get(change, "changeType"))
    symbol = _CHANGE_TYPES.get(kind, ("x", 9, ""))[0]
    resource_id = str(_get(change, "resourceId") or "")
    _scope, relative = _split_resource_id(resource_id)
    before = _get(change, "before") or {}
    after = _get(change, "after") or {}
    api_version = (after or before).get("apiVersion") or (after or before).get("api_version")
    head = f"  {symbol} {relative}" + (f" [{api_version}]" if api_version else "")
    reason = _get(change, "unsupportedReason")
    if kind == "Unsupported" and reason:
        head += f"\n\n      Unsupported reason: {reason}\n"
    lines = [head]
    if kind == "Modify":
        lines += _property_lines(_get(change, "delta") or [], "    ")
    elif show_payloads and kind == "Create" and after:
        lines += _payload_lines(after, "      ")
    elif show_payloads and kind == "Delete" and before:
        lines += _payload_lines(before, "      ")
    return lines


def _collapse_blank_lines(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        if line == "" and out and out[-1] == "":
            continue
        out.append(line)
    return out


def plan_documents(plan: Any, store: Any | None = None) -> list[dict[str, Any]]:
    """The changes of a workflow's ``WhatIfPlan`` as ARM-shaped documents for ``render_plan``.

    The full what-if result (with before/after payloads) is read from the content store when this machine has it;
    otherwise the summary that travelled through history is used (resource ids, change types, property deltas).
    """
    full = getattr(plan, "full_result", None)
    if full is not None and store is not None:
        try:
            doc = json.loads(store.get(full))
        except Exception:  # another machine's store, or pruned: fall back to the summary
            doc = None
        changes = _changes_in(doc)
        if changes is not None:
            return changes
    return [_plan_change_document(c) for c in getattr(plan, "changes", [])]


def _changes_in(doc: Any) -> list[dict[str, Any]] | None:
    if isinstance(doc, list):
        return [c for c in doc if isinstance(c, dict)]
    if not isinstance(doc, dict):
        return None
    for candidate in (doc.get("properties"), doc):
        if isinstance(candidate, dict) and isinstance(candidate.get("changes"), list):
            return [c for c in candidate["changes"] if isinstance(c, dict)]
    return None


def _plan_change_document(change: Any) -> dict[str, Any]:
    kind = getattr(change, "change_type", "")
    return {
        "resourceId": change.resource_id,
        "changeType": str(getattr(kind, "value", kind)),
        "unsupportedReason": getattr(change, "unsupported_reason", None),
        "delta": [_property_document(p) for p in getattr(change, "delta", [])],
    }


def _property_document(prop: Any) -> dict[str, Any]:
    return {
        "path": prop.path,
        "propertyChangeType": prop.change_type,
        "before": prop.before,
        "after": prop.after,
        "children": [_property_document(c) for c in prop.children],
    }
