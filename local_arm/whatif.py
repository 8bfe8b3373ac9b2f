"""What-if: the expanded template against stored state, as ARM computes it.

- a resource not stored → Create (``after`` only);
- a stored resource → Modify with a property-level ``delta`` when a property the template sets differs, else
  NoChange. Properties the template does not set are not changes (they are defaults or provider-owned), nor are
  read-only or write-only ones; values that stay unknown until deployment (Deferred) are not changes either;
- a stored resource of the resource group that the template does not declare → Delete in Complete mode, Ignore in
  Incremental mode.
"""

from __future__ import annotations

from typing import Any

from arm_engine import Deferred

from .providers import READ_ONLY_TOP_LEVEL, WRITE_ONLY_KEYS


def materialize(value: Any) -> Any:
    """Deferred values as ARM shows unevaluated expressions: the expression text in brackets."""
    if isinstance(value, Deferred):
        text = value.expression
        return text if text.startswith("[") else f"[{text}]"
    if isinstance(value, dict):
        return {k: materialize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [materialize(v) for v in value]
    return value


def property_delta(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """Changes the template (``after``) makes to the stored request body (``before``)."""
    changes: list[dict[str, Any]] = []
    if isinstance(after, dict) and isinstance(before, dict):
        lower_before = {k.lower(): k for k in before}
        for key, new in after.items():
            lkey = key.lower()
            if lkey in WRITE_ONLY_KEYS or (not path and lkey in READ_ONLY_TOP_LEVEL) or _deferred(new):
                continue
            child = f"{path}.{key}" if path else key
            if lkey not in lower_before:
                if new is None:
                    continue
                if isinstance(new, dict) and new:
                    changes.extend(property_delta({}, new, child))  # ARM reports a new object's leaves
                    continue
                changes.append({"path": child, "propertyChangeType": "Create", "after": materialize(new)})
                continue
            old = before[lower_before[lkey]]
            if not path and lkey == "location":
                if _norm_location(old) != _norm_location(new):
                    changes.append({"path": child, "propertyChangeType": "Modify", "before": old, "after": new})
                continue
            changes.extend(property_delta(old, new, child))
        return changes
    if isinstance(after, list) and isinstance(before, list):
        children: list[dict[str, Any]] = []
        for i in range(max(len(before), len(after))):
            if i >= len(before):
                if not _deferred(after[i]):
                    children.append({"path": str(i), "propertyChangeType": "Create", "after": materialize(after[i])})
            elif i >= len(after):
                children.append({"path": str(i), "propertyChangeType": "Delete", "before": before[i]})
            else:
                sub = property_delta(before[i], after[i], "")
                if sub:
                    if isinstance(after[i], (dict, list)) and isinstance(before[i], type(after[i])):
                        children.append(
                            {
                                "path": str(i),
                                "propertyChangeType": "Modify",
                                "before": before[i],
                                "after": materialize(after[i]),
                                "children": sub,
                            }
                        )
                    else:
                        children.append(
                            {
                                "path": str(i),
                                "propertyChangeType": "Modify",
                                "before": before[i],
                                "after": materialize(after[i]),
                            }
                        )
        if children:
            changes.append({"path": path, "propertyChangeType": "Array", "children": children})
        return changes
    if _deferred(after) or _same(before, after):
        return []
    return [{"path": path, "propertyChangeType": "Modify", "before": before, "after": materialize(after)}]


def _deferred(value: Any) -> bool:
    if isinstance(value, Deferred):
        return True
    if isinstance(value, dict):
        return any(_deferred(v) for v in value.values())
    if isinstance(value, list):
        return any(_deferred(v) for v in value)
    return False


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (a == b and type(a) is type(b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if (
        isinstance(a, str)
        and isinstance(b, str)
        and a.startswith("/subscriptions/")
        and b.startswith("/subscriptions/")
    ):
        return _canonical_id(a) == _canonical_id(b)
    return bool(a == b)


def _canonical_id(value: str) -> str:
    """A resource id as providers return it: ARM ids are case-insensitive, and a resource group's id is
    ``/subscriptions/{s}/resourceGroups/{g}`` however it was written (``subscriptionResourceId()`` gives
    ``.../providers/Microsoft.Resources/resourceGroups/{g}``)."""
    return value.lower().rstrip("/").replace("/providers/microsoft.resources/resourcegroups/", "/resourcegroups/")


def _norm_location(value: Any) -> str:
    return str(value).replace(" ", "").lower()
