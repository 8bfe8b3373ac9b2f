"""Drift detection on the worker: the post-deployment baseline of each resource group, and the classification of a
what-if of the last good deployment against the live state (contract/drift.py, docs/FLEET.md)."""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from contract.drift import MAX_FINDINGS, AllowEntry, DriftClass, DriftFinding
from services.content_store import BlobStore

BASELINE_DIR = "drift-baseline"


def leaf_paths(delta: Iterable[Mapping[str, Any]], prefix: str = "") -> list[str]:
    """The property paths of a what-if delta, array elements included (``properties.rules.0.port``)."""
    out: list[str] = []
    for d in delta:
        path = f"{prefix}.{d.get('path', '')}" if prefix else str(d.get("path", ""))
        children = d.get("children") or []
        out.extend(leaf_paths(children, path) if children else [path])
    return out


def _type_of(resource_id: str) -> str:
    parts = resource_id.split("/")
    low = [p.lower() for p in parts]
    if "providers" not in low:
        return ""
    i = len(low) - 1 - low[::-1].index("providers")
    rest = parts[i + 1 :]
    return "/".join([rest[0], *rest[1::2]]) if rest else ""


def _matches(entry: AllowEntry, resource_type: str, api_version: str | None, path: str) -> bool:
    if entry.resource_type.lower() != resource_type.lower():
        return False
    if entry.api_version != "*" and (api_version or "").lower() != entry.api_version.lower():
        return False
    pattern = entry.path
    if pattern.endswith(".*") and (path == pattern[:-2] or path.startswith(pattern[:-1])):
        return True
    return fnmatch.fnmatchcase(path, pattern)


def _api_version(change: Mapping[str, Any]) -> str | None:
    """The api version what-if's full payloads carry (``after``, else ``before``), if any."""
    for side in ("after", "before"):
        body = change.get(side)
        if isinstance(body, Mapping) and body.get("apiVersion"):
            return str(body["apiVersion"])
    return None


def entry_label(entry: AllowEntry) -> str:
    when = f"{entry.expires:%Y-%m-%d}"
    return f"{entry.resource_type} {entry.path} (api {entry.api_version}, by {entry.who}, expired {when})"


def changes_of(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    props = doc.get("properties") or {}
    return list(props.get("changes") or doc.get("changes") or [])


def baseline_of(doc: Mapping[str, Any]) -> dict[str, list[str]]:
    """What a what-if still shows right after a good deployment: provider noise, per resource id (lower case)."""
    out: dict[str, list[str]] = {}
    for change in changes_of(doc):
        if str(change.get("changeType", "")).lower() == "modify":
            out[str(change.get("resourceId", "")).lower()] = sorted(set(leaf_paths(change.get("delta") or [])))
    return out


def classify(
    doc: Mapping[str, Any],
    *,
    baseline: Mapping[str, list[str]],
    allow_list: list[AllowEntry],
    now: datetime,
    api_versions: Mapping[str, str] | None = None,
) -> tuple[DriftClass, list[DriftFinding], int, int, list[str]]:
    """(class, findings, suppressed by the baseline, suppressed by the allow-list, expired entries)."""
    live = [e for e in allow_list if e.expires > now]
    expired = [entry_label(e) for e in allow_list if e.expires <= now]
    findings: list[DriftFinding] = []
    by_baseline = by_allow = 0
    destructive = configuration = False
    for change in changes_of(doc):
        kind = str(change.get("changeType", ""))
        rid = str(change.get("resourceId", ""))
        if kind.lower() == "create":  # in the template, gone from the live state
            destructive = True
            findings.append(DriftFinding(resource_id=rid, change_type="Create"))
        elif kind.lower() == "delete":  # live, not in the template (complete mode): added out of band
            configuration = True
            findings.append(DriftFinding(resource_id=rid, change_type="Delete"))
        elif kind.lower() == "modify":
            noise = set(baseline.get(rid.lower(), []))
            rtype = str(change.get("resourceType") or _type_of(rid))
            version = (api_versions or {}).get(rid.lower()) or _api_version(change)
            drifted: list[str] = []
            for path in leaf_paths(change.get("delta") or []):
                if path in noise:
                    by_baseline += 1
                elif any(_matches(e, rtype, version, path) for e in live):
                    by_allow += 1
                else:
                    drifted.append(path)
            if drifted:
                configuration = True
                findings.append(DriftFinding(resource_id=rid, change_type="Modify", paths=drifted))
    if destructive:
        cls = DriftClass.DESTRUCTIVE_DRIFT
    elif configuration:
        cls = DriftClass.CONFIGURATION_DRIFT
    elif by_baseline or by_allow:
        cls = DriftClass.NOISE
    else:
        cls = DriftClass.NO_CHANGE
    return cls, findings[:MAX_FINDINGS], by_baseline, by_allow, expired


class BaselineStore:
    """The named record ``drift-baseline/<sha256(sub/rg)>.json`` of the content store: the baseline of the resource
    group's last good deployment (its name, and the noisy paths per resource). Replaced atomically."""

    def __init__(self, store: BlobStore) -> None:
        self._store = store

    def _name(self, sub: str, rg: str) -> str:
        return f"{BASELINE_DIR}/" + hashlib.sha256(f"{sub.lower()}/{rg.lower()}".encode()).hexdigest() + ".json"

    def load(self, sub: str, rg: str, deployment_name: str) -> dict[str, list[str]] | None:
        data = self._store.get_named(self._name(sub, rg))
        if data is None:
            return None
        try:
            doc = json.loads(data)
        except ValueError:
            return None
        if doc.get("deployment") != deployment_name:
            return None  # a newer good deployment: its baseline is still to be taken
        return {str(k): list(v) for k, v in (doc.get("paths") or {}).items()}

    def save(self, sub: str, rg: str, deployment_name: str, paths: dict[str, list[str]]) -> None:
        self._store.put_named(self._name(sub, rg), json.dumps({"deployment": deployment_name, "paths": paths}).encode())
