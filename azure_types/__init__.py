"""Azure's resource type schemas (from Azure/bicep-types-az, MIT; see data/SOURCE.md), read lazily from package data.

Importing this package reads nothing. The first question about a provider namespace reads that namespace's entry of
``data/azure-types.zip`` (the largest, Microsoft.Network, is 3 MB of JSON) and keeps it for the life of the
process; a process that never asks pays nothing. Node kinds and property flags are the source's (``azure-types/1``):

- ``k``: ``str`` (``min``/``max``/``re``/``sec``), ``lit`` (``v``), ``int`` (``min``/``max``), ``bool``, ``any``,
  ``null``, ``arr`` (``item``), ``union`` (``of``), ``obj`` (``n``, ``p``, ``ap``, ``sec``), ``disc`` (``d``, ``p``,
  ``e``);
- property flags: 1 Required, 2 ReadOnly (everything below is read-only too), 4 WriteOnly, 8 DeployTimeConstant.
"""

from __future__ import annotations

import json
import threading
import zipfile
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

REQUIRED = 1
READ_ONLY = 2
WRITE_ONLY = 4

Node = dict[str, Any]

_lock = threading.Lock()
_shards: dict[str, Namespace | None] = {}


@dataclass(frozen=True)
class TypeSchema:
    """One resource type at one api-version (the version the schema has, which may differ from the one asked)."""

    namespace: Namespace
    type_name: str  # as upstream spells it
    api_version: str  # the schema's version
    requested_version: str
    body: int
    readable_scopes: int
    writable_scopes: int

    @property
    def exact(self) -> bool:
        return self.api_version == self.requested_version.lower()

    def node(self, ref: int) -> Node:
        return self.namespace.nodes[ref]

    @property
    def body_node(self) -> Node:
        return self.namespace.nodes[self.body]


class Namespace:
    """The resource types, functions and nodes of one provider namespace (``microsoft.storage``)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.resources: dict[str, dict[str, dict[str, Any]]] = data["resources"]
        self.functions: dict[str, dict[str, dict[str, dict[str, Any]]]] = data["functions"]
        self.nodes: list[Node] = data["nodes"]
        self._merged: dict[tuple[int, int | None], dict[str, list[int]]] = {}

    def versions(self, resource_type: str) -> list[str]:
        return list(self.resources.get(resource_type.lower(), {}))

    def properties(self, node: Node, value: Any = None) -> dict[str, list[int]]:
        """A node's properties; for a discriminated object, the base ones plus the variant ``value`` selects. The
        same (read-only) dict is returned for the same node and variant, so callers may cache by identity."""
        if node["k"] == "obj":
            return node.get("p", _NO_PROPERTIES)
        if node["k"] == "disc":
            variant = _ci_get(node.get("e", {}), value.get(node["d"])) if isinstance(value, dict) else None
            key = (id(node), variant)
            merged = self._merged.get(key)
            if merged is None:
                merged = dict(node.get("p", {}))
                if variant is not None:
                    merged.update(self.nodes[variant].get("p", {}))
                self._merged[key] = merged
            return merged
        return _NO_PROPERTIES


_NO_PROPERTIES: dict[str, list[int]] = {}


def _ci_get(mapping: dict[str, Any], key: Any) -> Any:
    if not isinstance(key, str):
        return None
    if key in mapping:
        return mapping[key]
    lower = key.lower()
    for k, v in mapping.items():
        if k.lower() == lower:
            return v
    return None


@cache
def _archive_names() -> frozenset[str]:
    with _open_archive() as zf:
        return frozenset(n.removesuffix(".json") for n in zf.namelist() if not n.startswith("_"))


def _open_archive() -> zipfile.ZipFile:
    path = resources.files(__name__).joinpath("data", "azure-types.zip")
    return zipfile.ZipFile(path.open("rb"))


def namespaces() -> frozenset[str]:
    """Every provider namespace the schema knows (lower case)."""
    return _archive_names()


def namespace(name: str) -> Namespace | None:
    """The schema of one provider namespace, read on first use; None when the schema has no such namespace."""
    key = name.lower()
    with _lock:
        if key in _shards:
            return _shards[key]
        shard: Namespace | None = None
        if key in _archive_names():
            with _open_archive() as zf:
                shard = Namespace(json.loads(zf.read(f"{key}.json")))
        _shards[key] = shard
        return shard


def source() -> dict[str, Any]:
    """Where the data comes from (repository, commit, licence) and its counts."""
    with _open_archive() as zf:
        return json.loads(zf.read("_source.json"))


def known_versions(resource_type: str) -> list[str] | None:
    """The api-versions the schema has for a type (sorted as strings), or None for a type it does not know."""
    shard = namespace(resource_type.split("/", 1)[0])
    if shard is None or resource_type.lower() not in shard.resources:
        return None
    return shard.versions(resource_type)


def nearest_versions(versions: list[str], api_version: str, count: int = 3) -> list[str]:
    """The known versions closest in date to ``api_version``; stable ones first when a stable one was asked for."""
    wanted = _version_date(api_version)
    preview = api_version.lower().endswith("-preview")
    pool = [v for v in versions if not v.endswith("-preview")] if not preview else list(versions)
    if not pool:
        pool = list(versions)
    if wanted is None:
        return sorted(pool, reverse=True)[:count]
    ranked = sorted(pool, key=lambda v: (abs(((_version_date(v) or wanted) - wanted).days), v.endswith("-preview"), v))
    return ranked[:count]


def _version_date(version: str) -> date | None:
    try:
        return date.fromisoformat(version[:10])
    except ValueError:
        return None


def lookup(resource_type: str, api_version: str, *, nearest: bool = True) -> TypeSchema | None:
    """The schema of ``resource_type`` at ``api_version``; with ``nearest``, the closest known version when the schema
    lacks that one (``TypeSchema.exact`` tells). None when the type is unknown."""
    shard = namespace(resource_type.split("/", 1)[0])
    if shard is None:
        return None
    versions = shard.resources.get(resource_type.lower())
    if not versions:
        return None
    version = api_version.lower()
    entry = versions.get(version)
    if entry is None:
        if not nearest:
            return None
        version = nearest_versions(list(versions), version, 1)[0]
        entry = versions[version]
    return TypeSchema(
        namespace=shard,
        type_name=entry["type"],
        api_version=version,
        requested_version=api_version,
        body=entry["body"],
        readable_scopes=entry["readableScopes"],
        writable_scopes=entry["writableScopes"],
    )


def function(resource_type: str, api_version: str, name: str) -> tuple[Namespace, dict[str, Any]] | None:
    """A resource function (``listKeys``) of a type: its entry (``in``/``out`` node ids) at ``api_version`` or, when
    the schema lacks that version, at the nearest version that has the function. Names match case-insensitively."""
    shard = namespace(resource_type.split("/", 1)[0])
    if shard is None:
        return None
    versions = shard.functions.get(resource_type.lower())
    if not versions:
        return None
    having = [v for v, fns in versions.items() if _ci_get(fns, name) is not None]
    if not having:
        return None
    version = api_version.lower() if api_version.lower() in having else nearest_versions(having, api_version, 1)[0]
    return shard, _ci_get(versions[version], name)
