"""What the local ARM derives from Azure's type schemas (``azure_types``): the read-only properties a provider
computes, the shape of ``list*`` answers, and which properties what-if must not compare.

Every value is derived from the resource id (and the property's name, kind, enum or pattern), so a redeploy sees the
same values. When the schema lacks the api-version a template uses, the nearest version of that type answers and the
server log says so (once per type and version). Values are plausible, never real: keys and tokens are digests.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import threading
import uuid
from typing import Any

import azure_types

log = logging.getLogger("local_arm")

_RO = azure_types.READ_ONLY
_WO = azure_types.WRITE_ONLY
# Properties ARM itself (not the provider) sets, or that the local ARM sets elsewhere.
_NOT_SYNTHESIZED = frozenset({"provisioningstate", "id", "type", "name", "apiversion", "etag", "systemdata"})
_GUID_PATTERN = re.compile(r"[0-9a-fA-F]\{8\}|\\w\{8\}-|\[0-9a-f")
_MAX_OBJECT_DEPTH = 3
_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def schema_for(resource_type: str, api_version: str | None) -> azure_types.TypeSchema | None:
    """The type's schema at ``api_version`` or the nearest known version (logged once); None for unknown types."""
    if not resource_type or not api_version:
        return None
    schema = azure_types.lookup(resource_type, api_version)
    if schema is not None and not schema.exact:
        key = (resource_type.lower(), api_version.lower())
        with _warned_lock:
            first = key not in _warned
            _warned.add(key)
        if first:
            log.info(
                "schema: %s has no api-version %s in Azure's type schemas; using the nearest, %s",
                resource_type,
                api_version,
                schema.api_version,
            )
    return schema


# ----------------------------------------------------------------------------------------------- computed values


class _Context:
    def __init__(
        self, resource_type: str, name: str, location: str | None, resource_id: str, *, function: str = ""
    ) -> None:
        self.resource_id = resource_id
        self.name = name.rsplit("/", 1)[-1].lower()
        self.location = (location or "eastus").replace(" ", "").lower()
        namespace = resource_type.split("/", 1)[0].lower()
        self.service = namespace.removeprefix("microsoft.").replace(".", "") or "azure"
        self.function = function.lower()
        # A list* answer differs per function; a resource's values do not depend on which call reads them.
        self.salt_prefix = resource_id.lower() + (f"|{self.function}" if function else "")
        parts = resource_id.split("/")
        self.resource_group = parts[4] if len(parts) > 4 else "rg"
        # Host names belong to the top-level resource (a namespace's, not its authorization rule's).
        provider = max((i for i, p in enumerate(parts) if p.lower() == "providers"), default=-1)
        self.top = parts[provider + 3].lower() if provider >= 0 and len(parts) > provider + 3 else self.name

    def digest(self, salt: str) -> bytes:
        return hashlib.sha256(f"{salt}|{self.salt_prefix}".encode()).digest()

    def guid(self, salt: str) -> str:
        return str(uuid.UUID(bytes=self.digest(salt)[:16]))

    def host(self) -> str:
        return f"{self.top}.{self.service}.azure.com"


def fill_read_only(payload: dict[str, Any], resource_type: str, api_version: str | None, resource_id: str) -> None:
    """Add to ``payload`` (a GET body) the read-only properties its type's schema declares and it lacks.

    Under ``properties``: every read-only property, objects to a few levels, arrays of values with one element,
    arrays of referenced resources empty. Inside objects the template wrote: the same, a level shallower, never a
    referenced resource's tree (a real GET returns little more than ``{"id": ...}`` there).
    """
    schema = schema_for(resource_type, api_version)
    if schema is None:
        return
    ns = schema.namespace
    ctx = _Context(resource_type, str(payload.get("name", "")), payload.get("location"), resource_id)
    body = ns.properties(schema.body_node, payload)
    for key, value in payload.items():
        entry = _ci(body, key.lower())
        if entry is None or not isinstance(value, dict):
            continue
        ref, flags = entry
        if key.lower() == "properties":
            # Some types' whole ``properties`` is read-only (DNSSEC configs): every property in it is the provider's.
            _fill(ns, ns.nodes[ref], value, ctx, top=True, depth=0, inherited=bool(flags & _RO), prefix="")
        elif not flags & _RO:
            # Other objects the template wrote (identity, sku, ...): their read-only scalars, such as the
            # principalId of each user-assigned identity.
            _fill(ns, ns.nodes[ref], value, ctx, top=False, depth=1, prefix=key)


def _fill(ns: azure_types.Namespace, node: dict[str, Any], target: dict[str, Any], ctx: _Context, *, top: bool,
          depth: int, inherited: bool = False, prefix: str = "") -> None:  # fmt: skip
    """``prefix`` names where ``target`` is (``identity``, ``subnets.0``): values differ per place."""
    found = _as_object(ns, node)
    if found is None:
        return
    node = found
    present = {k.lower(): k for k in target}
    additional = node.get("ap")
    declared = ns.properties(node, target)
    if additional is not None and depth < 3:  # a map of objects: each entry
        entry_node = _as_object(ns, ns.nodes[additional])
        if entry_node is not None:
            lower = {k.lower() for k in declared}
            for key, value in target.items():
                if key.lower() not in lower and isinstance(value, dict):
                    _fill(ns, entry_node, value, ctx, top=False, depth=depth + 1, inherited=inherited,
                          prefix=f"{prefix}.{key.rsplit('/', 1)[-1]}")  # fmt: skip
    for pname, (ref, flags) in declared.items():
        lname = pname.lower()
        if lname in present:
            value = target[present[lname]]
            if flags & _RO or depth >= 2:
                continue
            child = _as_object(ns, ns.nodes[ref])
            if isinstance(value, dict) and child is not None:
                _fill(ns, child, value, ctx, top=False, depth=depth + 1, prefix=f"{prefix}.{pname}")
            elif isinstance(value, list) and ns.nodes[ref]["k"] == "arr":
                item = _as_object(ns, ns.nodes[ns.nodes[ref]["item"]])
                if item is not None:
                    for i, element in enumerate(value):
                        if isinstance(element, dict):
                            _fill(ns, item, element, ctx, top=False, depth=depth + 1, prefix=f"{prefix}.{pname}.{i}")
            continue
        if not (flags & _RO or inherited) or lname in _NOT_SYNTHESIZED:
            continue
        kind = ns.nodes[ref]["k"]
        if not top and (kind == "any" or (kind in ("obj", "disc") and _looks_like_sub_resource(ns.nodes[ref]))):
            continue  # inside what the template wrote: no referenced resource's tree, no untyped blob
        # Inside objects the template wrote, read-only objects and arrays are kept shallower.
        value = _synthesize(ns, ref, pname, ctx, 0 if top else 1, salt=prefix)
        if value is not None:
            target[pname] = value


def _as_object(ns: azure_types.Namespace, node: dict[str, Any]) -> dict[str, Any] | None:
    if node["k"] in ("obj", "disc"):
        return node
    if node["k"] == "union":
        for i in node["of"]:
            if ns.nodes[i]["k"] in ("obj", "disc"):
                return ns.nodes[i]
    return None


def _synthesize(ns: azure_types.Namespace, ref: int, pname: str, ctx: _Context, depth: int, *, salt: str = "") -> Any:
    node = ns.nodes[ref]
    kind = node["k"]
    if kind == "lit":
        return node["v"]
    if kind == "union":
        literals = [ns.nodes[i]["v"] for i in node["of"] if ns.nodes[i]["k"] == "lit"]
        if literals:
            return literals[0]
        return _synthesize(ns, node["of"][0], pname, ctx, depth, salt=salt) if node["of"] else None
    if kind == "str":
        return _string(node, pname, ctx, salt=salt)
    if kind == "int":
        return int(node.get("min", 0)) if node.get("min", 0) > 0 else 0
    if kind == "bool":
        return False
    if kind == "any":
        return {}
    if kind == "arr":
        # One element where templates index into it ([0]); none for arrays of referenced resources (a fresh
        # resource has no private endpoint connections) and beyond a few levels.
        item = ns.nodes[node["item"]]
        if depth >= _MAX_OBJECT_DEPTH or (item["k"] in ("obj", "disc") and _looks_like_sub_resource(item)):
            return []
        value = _synthesize(ns, node["item"], _singular(pname), ctx, depth + 1, salt=salt)
        return [] if value is None or value == {} else [value]
    if kind in ("obj", "disc"):
        out: dict[str, Any] = {}
        if depth >= _MAX_OBJECT_DEPTH or _looks_like_sub_resource(node):
            return out
        for child, (child_ref, _flags) in node.get("p", {}).items():
            if child.lower() in _NOT_SYNTHESIZED:
                continue
            value = _synthesize(ns, child_ref, f"{pname}.{child}", ctx, depth + 1, salt=salt)
            if value is not None:
                out[child] = value
        return out
    return None


def _looks_like_sub_resource(node: dict[str, Any]) -> bool:
    props = {k.lower() for k in node.get("p", {})}
    return "id" in props and "properties" in props


def _singular(name: str) -> str:
    return name[:-1] if name.endswith("s") else name


def _string(node: dict[str, Any], pname: str, ctx: _Context, *, salt: str = "") -> str:
    """A plausible value for a read-only string, by the property's name (``pname`` may carry its parents,
    ``secondaryEndpoints.blob``), pattern and length."""
    lname = pname.rsplit(".", 1)[-1].lower()
    ancestry = pname.lower()
    key = f"{salt}|{ancestry}" if salt else ancestry  # where the value is: two places, two values
    d = ctx.digest(key)
    pattern = str(node.get("re", ""))
    parent = ancestry.rsplit(".", 2)[-2] if "." in ancestry else ""
    times = ("time", "date", "timestamp", "createdat", "modifiedat", "updatedat", "timeutc", "till")
    if lname.endswith(times) or parent.endswith(times):
        value = "2026-01-01T00:00:00.0000000Z"
    elif node.get("sec") or any(w in lname for w in ("key", "token", "secret", "password", "connectionstring")):
        value = base64.b64encode(d + ctx.digest(key + "2")).decode()
    elif _GUID_PATTERN.search(pattern) or lname.endswith(("guid", "uuid")):
        value = ctx.guid(key)
    elif lname == "id" or lname.endswith("resourceid"):
        value = f"{ctx.resource_id}/{lname}/default"
    elif lname.endswith("id"):
        value = ctx.guid(key)
    elif lname == "resourcegroup":
        value = ctx.resource_group
    elif any(w in lname for w in ("fqdn", "hostname", "domainname", "dnsname", "host")):
        value = ctx.host()
    elif any(w in lname for w in ("uri", "url", "endpoint")):
        value = f"https://{ctx.host()}/"
    elif any(w in ancestry for w in ("uri", "url", "endpoint")):
        value = f"https://{ctx.name}.{lname}.{ctx.service}.azure.com/"
    elif "ipaddress" in lname or lname in ("ip", "publicip", "privateip"):
        value = f"20.{d[0]}.{d[1]}.{d[2] or 1}"
    elif "version" in lname:
        value = "1.0"
    elif "location" in lname or "region" in lname:
        value = ctx.location
    elif lname.endswith("name"):
        value = ctx.name
    else:
        value = d.hex()[:16]
    maximum = node.get("max")
    if isinstance(maximum, int) and maximum > 0:
        value = value[:maximum]
    return value


def _ci(mapping: dict[str, Any], key: str) -> Any:
    for k, v in mapping.items():
        if k.lower() == key:
            return v
    return None


# ----------------------------------------------------------------------------------------------- list* answers


def list_answer(resource_type: str, api_version: str, function: str, resource_id: str) -> Any | None:
    """The answer of a resource function shaped by its schema (keys, connection strings, tokens); deterministic per
    resource, never a real secret. None when the schema does not know the function for that type."""
    found = azure_types.function(resource_type, api_version, function)
    if found is None:
        return None
    ns, entry = found
    ctx = _Context(resource_type, resource_id.rsplit("/", 1)[-1], None, resource_id, function=function)
    return _output(ns, entry["out"], "", ctx, 0, index=0)


def _output(
    ns: azure_types.Namespace, ref: int, pname: str, ctx: _Context, depth: int, *, index: int, scope: str = ""
) -> Any:
    """``scope`` is the path of the object the value is in: keys differ between ``masterKey`` and
    ``functionKeys.default``, and agree between ``primaryKey`` and the key inside ``primaryConnectionString``."""
    node = ns.nodes[ref]
    kind = node["k"]
    if depth > 6:
        return None
    if kind == "arr":
        # Two elements, as key lists have (key1/key2, primary/secondary): templates index [0] and [1].
        return [_output(ns, node["item"], _singular(pname), ctx, depth + 1, index=i, scope=scope) for i in range(2)]
    if kind in ("obj", "disc"):
        out: dict[str, Any] = {}
        for child, (child_ref, _flags) in node.get("p", {}).items():
            if child.lower() == "nextlink":
                continue
            value = _output(ns, child_ref, child, ctx, depth + 1, index=index, scope=scope)
            if value is not None:
                out[child] = value
        if not out and node.get("ap") is not None:
            # A map of keys (a function app's functionKeys): the entry the service always creates, "default".
            value = _output(ns, node["ap"], "key", ctx, depth + 1, index=index, scope=f"{scope}.{pname}")
            if value is not None:
                out["default"] = value
        return out
    if kind == "str":
        return _secret_string(node, pname, ctx, index, scope)
    return _synthesize(ns, ref, pname, ctx, _MAX_OBJECT_DEPTH)


def _secret_string(node: dict[str, Any], pname: str, ctx: _Context, index: int, scope: str = "") -> str:
    lname = pname.lower()
    second = "secondary" in lname or lname.endswith("2")
    n = index + (2 if second else 1)
    key = base64.b64encode(ctx.digest(f"{scope}key{n}") + ctx.digest(f"{scope}key{n}+")).decode()
    if any(w in lname for w in ("url", "uri", "endpoint")) or (lname == "value" and "url" in ctx.function):
        # a callback or SAS URL: the signature is the secret part
        sig = base64.urlsafe_b64encode(ctx.digest(f"sig{n}")).decode().rstrip("=")
        return f"https://{ctx.host()}/{ctx.name}?api-version=2016-06-01&sp=%2Ftriggers&sv=1.0&sig={sig}"
    if "connectionstring" in lname:
        return f"Endpoint=https://{ctx.host()}/;SharedAccessKeyName=key{n};SharedAccessKey={key}"
    if lname in ("keyname", "name"):
        return f"key{n}"
    if any(w in lname for w in ("key", "token", "secret", "password", "value", "credential", "sas")) or node.get("sec"):
        return key
    return _string(node, pname, ctx)


# ----------------------------------------------------------------------------------------------- what-if


def readable(resource_type: str, api_version: str | None) -> bool:
    """False when the schema says the type cannot be read at all (no GET: ``readableScopes`` 0), e.g. Key Vault
    ``accessPolicies``; True for readable types and types the schema does not know."""
    schema = schema_for(resource_type, api_version)
    return schema is None or schema.readable_scopes != 0


def without_unseen(body: Any, resource_type: str, api_version: str | None) -> Any:
    """``body`` without the properties what-if does not compare: read-only ones (the provider's) and write-only ones
    (never returned by GET), per the type's schema. Bodies of types the schema does not know come back unchanged."""
    schema = schema_for(resource_type, api_version)
    if schema is None or not isinstance(body, dict):
        return body
    return _prune(schema.namespace, schema.body, body, 0)


def _prune(ns: azure_types.Namespace, ref: int, value: Any, depth: int) -> Any:
    if depth > 40:
        return value
    node = ns.nodes[ref]
    kind = node["k"]
    if kind == "union":
        target = _as_object(ns, node)
        if target is None:
            arrays = [i for i in node["of"] if ns.nodes[i]["k"] == "arr"]
            return _prune(ns, arrays[0], value, depth) if arrays and isinstance(value, list) else value
        node, kind = target, target["k"]
    if kind == "arr" and isinstance(value, list):
        return [_prune(ns, node["item"], v, depth + 1) for v in value]
    if kind in ("obj", "disc") and isinstance(value, dict):
        props = ns.properties(node, value)
        lower = {k.lower(): v for k, v in props.items()}
        out: dict[str, Any] = {}
        for key, item in value.items():
            entry = lower.get(key.lower())
            if entry is None:
                additional = node.get("ap")
                out[key] = _prune(ns, additional, item, depth + 1) if additional is not None else item
                continue
            child_ref, flags = entry
            if flags & (_RO | _WO) and not (depth == 0 and key.lower() in ("name", "type")):
                continue
            out[key] = _prune(ns, child_ref, item, depth + 1)
        return out
    return value
