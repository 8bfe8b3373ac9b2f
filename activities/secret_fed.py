"""Masking every value a secure parameter fed in a what-if result — the live side (``before``) included.

Scrubbing the current secure values (``activities.parameters.redact``) cannot find a *previous* value: what-if's
``before`` comes from the live resource, so after a secret is rotated the old value would reach the plan, the CLI's
output, history and the audit record. So PLANNING works out *where* secure parameters flow instead of *what* they
are: it expands the template offline twice, once with the secure values and once with each of them varied, and
every resource property whose value differs (or is a deferred expression naming a secure parameter) is
secret-fed. Both sides of the what-if are masked at those paths, whatever value they hold — the old value, a
transformed one (``base64()``, ``concat()``), or the new one.

The paths are also remembered per resource group in the content store (``secret-fed/``, beside ``last-good/``), so
a later plan masks them even when its template no longer feeds them: a resource being deleted, or a property whose
secure parameter became a plain one. Values found at those paths on the live side are added to the strings
scrubbed from the rest of the plan, so a copy of an old value elsewhere is masked too.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import string
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from arm_engine import DeploymentScope, ExpandedDeployment
from arm_engine.values import Deferred
from services.content_store import BlobStore, LocalBlobStore
from services.secrets import MASK, secret_strings

Segment = str | int  # a dict key (compared case-insensitively, as ARM compares property names) or a list index
PropertyPath = tuple[Segment, ...]
SecretPaths = dict[str, set[PropertyPath]]  # lower-cased resource id → property paths in the resource's body

SECRET_FED_DIR = "secret-fed"
# Keys that identify a resource rather than configure it: never masked when a whole resource is secret-fed.
_IDENTITY_KEYS = frozenset({"id", "name", "type", "apiversion", "location", "dependson", "scope"})


# ------------------------------------------------------------------------------------------ where secrets flow


def vary(value: Any, declaration: Mapping[str, Any] | None = None) -> Any:
    """A value of the same shape and length that differs in every string, number and boolean it holds, within the
    declaration's ``allowedValues``/``minValue``/``maxValue``, so the engine accepts it as it accepted ``value``."""
    decl = declaration or {}
    allowed = decl.get("allowedValues")
    if isinstance(allowed, list) and allowed:
        others = [a for a in allowed if a != value]
        return others[0] if others else value
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        top = decl.get("maxValue")
        return value + 1 if not isinstance(top, int) or value + 1 <= top else value - 1
    if isinstance(value, float):
        return value + 1.0
    if isinstance(value, str):
        return _vary_text(value)
    if isinstance(value, dict):
        return {k: vary(v) for k, v in value.items()}
    if isinstance(value, list):
        return [vary(v) for v in value]
    return value


def _vary_text(text: str) -> str:
    shift = str.maketrans(
        string.ascii_lowercase + string.ascii_uppercase + string.digits,
        string.ascii_lowercase[1:] + "a" + string.ascii_uppercase[1:] + "A" + string.digits[1:] + "0",
    )
    varied = text.translate(shift)
    if varied == text and text:  # no letter or digit in it
        varied = ("a" if text[0] != "a" else "b") + text[1:]
    return varied


def _declarations(template: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    params = template.get("parameters")
    if not isinstance(params, Mapping):
        return {}
    return {str(k).lower(): v for k, v in params.items() if isinstance(v, Mapping)}


def _stand_in(declaration: Mapping[str, Any], seed: str) -> str:
    """A value for a Key Vault reference (resolved only by ARM): any string the declaration allows."""
    low = declaration.get("minLength")
    high = declaration.get("maxLength")
    length = max(24, low if isinstance(low, int) else 0)
    if isinstance(high, int):
        length = min(length, high)
    return (hashlib.sha256(seed.encode()).hexdigest() * 4)[:length]


def _variant_parameters(
    template: Mapping[str, Any], parameters: Mapping[str, Any], secure_names: Iterable[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two parameter sets that agree on every plain value and differ in every secure one — a secure parameter left
    to its defaultValue too."""
    decls = _declarations(template)
    secure = {n.lower() for n in secure_names}
    first: dict[str, Any] = {}
    second: dict[str, Any] = {}
    given = {n.lower() for n in parameters}
    for name, decl in decls.items():
        if name in secure and name not in given and "defaultValue" in decl:
            default = decl["defaultValue"]
            if isinstance(default, str) and default.startswith("[") and not default.startswith("[["):
                first[name] = {"value": _stand_in(decl, f"a:{name}")}  # an expression: any two values
                second[name] = {"value": _stand_in(decl, f"b:{name}")}
            else:
                second[name] = {"value": vary(default, decl)}
    for name, entry in parameters.items():
        if name.lower() not in secure or not isinstance(entry, Mapping):
            first[name] = second[name] = entry
            continue
        decl = decls.get(name.lower(), {})
        if "value" in entry:
            first[name] = dict(entry)
            second[name] = {**entry, "value": vary(entry["value"], decl)}
        else:  # a Key Vault reference: the engine cannot resolve it, so both runs get a stand-in
            first[name] = {"value": _stand_in(decl, f"a:{name}")}
            second[name] = {"value": _stand_in(decl, f"b:{name}")}
    return first, second


def _mentions(expression: str, names: Iterable[str], function: str) -> bool:
    return any(re.search(rf"{function}\s*\(\s*'{re.escape(n)}'\s*\)", expression, flags=re.IGNORECASE) for n in names)


def _secret_variables(template: Mapping[str, Any], secure: set[str]) -> set[str]:
    """Variables whose definition uses a secure parameter, directly or through another such variable."""
    variables = template.get("variables")
    if not isinstance(variables, Mapping):
        return set()
    texts = {str(k).lower(): json.dumps(v) for k, v in variables.items()}
    tainted: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, text in texts.items():
            if name not in tainted and (_mentions(text, secure, "parameters") or _mentions(text, tainted, "variables")):
                tainted.add(name)
                changed = True
    return tainted


def secret_fed_paths(
    template: Mapping[str, Any],
    parameters: Mapping[str, Any],
    secure_names: Iterable[str],
    expand: Callable[[dict[str, Any], dict[str, Any]], ExpandedDeployment],
) -> SecretPaths:
    """The property paths, per resource, whose value a secure parameter feeds. ``expand`` runs the ARM engine
    (``activities.validate.expand`` with the deployment's scope). Raises what the engine raises."""
    declared = _declarations(template)
    names = {n.lower() for n in secure_names if n.lower() in declared}
    if not names:
        return {}
    first, second = _variant_parameters(template, parameters, names)
    a = expand(dict(template), first)
    b = expand(dict(template), second)
    secure_refs = names
    secret_vars = _secret_variables(template, names)

    def deferred_is_fed(value: Any) -> bool:
        return isinstance(value, Deferred) and (
            _mentions(value.expression, secure_refs, "parameters")
            or _mentions(value.expression, secret_vars, "variables")
        )

    found: SecretPaths = {}

    def differ(x: Any, y: Any, path: PropertyPath, out: set[PropertyPath]) -> None:
        if isinstance(x, dict) and isinstance(y, dict):
            keys = {**{k.lower(): k for k in y}, **{k.lower(): k for k in x}}
            lower_x = {k.lower(): v for k, v in x.items()}
            lower_y = {k.lower(): v for k, v in y.items()}
            for low, key in keys.items():
                if low not in lower_x or low not in lower_y:
                    out.add((*path, key))
                else:
                    differ(lower_x[low], lower_y[low], (*path, key), out)
        elif isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
            for i, (xi, yi) in enumerate(zip(x, y, strict=True)):
                differ(xi, yi, (*path, i), out)
        elif deferred_is_fed(x) or deferred_is_fed(y) or x != y:
            out.add(path)

    def whole(body: Mapping[str, Any]) -> set[PropertyPath]:
        return {(k,) for k in body if k.lower() not in _IDENTITY_KEYS}

    same_shape = len(a.resources) == len(b.resources) and all(
        ra.id.lower() == rb.id.lower() for ra, rb in zip(a.resources, b.resources, strict=False)
    )
    if not same_shape:  # a secure value decides which resources exist or what they are called: mask them whole
        for res in [*a.resources, *b.resources]:
            if not res.existing:
                found.setdefault(res.id.lower(), set()).update(whole(res.body))
        return found
    for ra, rb in zip(a.resources, b.resources, strict=True):
        if ra.existing:
            continue
        paths: set[PropertyPath] = set()
        differ(ra.body, rb.body, (), paths)
        if () in paths:
            paths = whole(ra.body)
        if paths:
            found[ra.id.lower()] = paths
    return found


# ------------------------------------------------------------------------------------------ masking a what-if


def _flat(path: PropertyPath) -> list[Segment]:
    """A path as what-if's dotted delta paths spell it: keys split at dots (a key may hold one), lower-cased."""
    out: list[Segment] = []
    for seg in path:
        if isinstance(seg, int):
            out.append(seg)
        else:
            out.extend(part.lower() for part in seg.split("."))
    return out


def _seg_matches(secret: Segment, delta: str) -> bool:
    if isinstance(secret, int):
        return delta.isdigit()  # any index: the live array's order need not be the template's
    return secret == delta


class _Masker:
    """Masks at secret-fed paths. A list index matches *every* element on the live side (``before``: the live
    array's order need not be the template's) but only its own element on the template side (``after``); only
    values found at their own index are collected for scrubbing elsewhere, so a plain neighbour stays readable."""

    def __init__(self, paths: SecretPaths) -> None:
        self.paths = paths
        self.found: list[Any] = []  # values masked at their exact path: scrubbed from the rest of the plan as well

    def _take(self, value: Any, exact: bool) -> str:
        if exact:
            self.found.append(value)
        return MASK

    def mask_at(self, node: Any, path: PropertyPath, *, live: bool, exact: bool = True) -> None:
        """Mask the value at ``path`` in a resource payload (or a value inside one)."""
        if not path:
            return
        head, rest = path[0], path[1:]
        if isinstance(node, dict):
            if not isinstance(head, str):
                return
            for key in [k for k in node if k.lower() == head.lower()]:
                if rest:
                    self.mask_at(node[key], rest, live=live, exact=exact)
                elif node[key] is not None:
                    node[key] = self._take(node[key], exact)
        elif isinstance(node, list) and isinstance(head, int):
            for i in range(len(node)) if live else [head] if head < len(node) else []:
                here = exact and i == head
                if rest:
                    self.mask_at(node[i], rest, live=live, exact=here)
                elif node[i] is not None:
                    node[i] = self._take(node[i], here)

    def mask_delta(self, entries: Any, resource_id: str, parent: list[str]) -> None:
        if not isinstance(entries, list):
            return
        paths = self.paths.get(resource_id, ())
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            raw = str(entry.get("path", "") or "")
            here = parent + ([p.lower() for p in raw.split(".")] if raw else [])
            for path in paths:
                flat = _flat(path)
                common = min(len(flat), len(here))
                if not all(_seg_matches(flat[i], here[i]) for i in range(common)):
                    continue
                exact = all(not isinstance(flat[i], int) or str(flat[i]) == here[i] for i in range(common))
                if len(flat) <= len(here):  # the entry is the secret-fed value or inside it
                    for side in ("before", "after"):
                        if entry.get(side) is not None:
                            entry[side] = self._take(entry[side], exact)
                else:  # the secret-fed value is inside the entry's values
                    rest = self._structured_rest(path, len(here))
                    for side in ("before", "after"):
                        value = entry.get(side)
                        if value is None:
                            continue
                        if rest is None:
                            entry[side] = self._take(value, exact)
                        else:
                            self.mask_at(value, rest, live=True, exact=exact)
            self.mask_delta(entry.get("children"), resource_id, here)

    @staticmethod
    def _structured_rest(path: PropertyPath, flat_length: int) -> PropertyPath | None:
        used = 0
        for i, seg in enumerate(path):
            if used == flat_length:
                return path[i:]
            used += 1 if isinstance(seg, int) else len(seg.split("."))
        return None


def mask_what_if(doc: dict[str, Any], paths: SecretPaths) -> tuple[dict[str, Any], list[str]]:
    """A copy of a what-if result (REST shape) with every secret-fed value masked on both sides, and the strings
    that were masked (to scrub wherever else they occur)."""
    if not paths:
        return doc, []
    doc = copy.deepcopy(doc)
    masker = _Masker(paths)
    inner = doc.get("properties")
    props: dict[str, Any] = inner if isinstance(inner, dict) else doc
    for change in props.get("changes") or []:
        if not isinstance(change, dict):
            continue
        rid = str(change.get("resourceId", "")).lower()
        if rid not in paths:
            continue
        for side in ("before", "after"):
            if isinstance(change.get(side), dict):
                for path in paths[rid]:
                    masker.mask_at(change[side], path, live=side == "before")
        masker.mask_delta(change.get("delta"), rid, [])
    return doc, secret_strings(v for v in masker.found if v != MASK)


# ------------------------------------------------------------------------------------------ remembered paths


class SecretPathRecord:
    """The secret-fed paths each resource group's deployments have had: the content store's named record
    ``secret-fed/<sha256(sub/rg)>.json`` (a file under the folder, a blob in the container). Only ever grows (a path
    once fed by a secret may still hold it on the live resource)."""

    def __init__(self, store: BlobStore | Path) -> None:
        self._store: BlobStore = LocalBlobStore(store) if isinstance(store, Path) else store

    def _name(self, subscription_id: str, resource_group: str) -> str:
        key = hashlib.sha256(f"{subscription_id.lower()}/{resource_group.lower()}".encode()).hexdigest()
        return f"{SECRET_FED_DIR}/{key}.json"

    def load(self, subscription_id: str, resource_group: str) -> SecretPaths:
        data = self._store.get_named(self._name(subscription_id, resource_group))
        try:
            raw = json.loads(data) if data is not None else {}
        except ValueError:
            return {}
        return {str(rid): {tuple(p) for p in paths if isinstance(p, list)} for rid, paths in raw.items()}

    def merge(self, subscription_id: str, resource_group: str, paths: SecretPaths) -> SecretPaths:
        """The record with ``paths`` added (written back when it grew)."""
        known = self.load(subscription_id, resource_group)
        merged = {rid: set(p) for rid, p in known.items()}
        for rid, found in paths.items():
            merged.setdefault(rid, set()).update(found)
        if merged != known:
            doc = {rid: sorted((list(p) for p in ps), key=json.dumps) for rid, ps in sorted(merged.items())}
            self._store.put_named(self._name(subscription_id, resource_group), json.dumps(doc).encode())
        return merged


def expander(scope: DeploymentScope) -> Callable[[dict[str, Any], dict[str, Any]], ExpandedDeployment]:
    from .validate import expand

    return lambda template, parameters: expand(template, parameters, scope)
