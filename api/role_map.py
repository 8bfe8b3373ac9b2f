"""Authorization for the team service: which token claim values (Entra ID app roles or group object ids) hold which
roles for which subscriptions and resource groups.

The role map is a YAML or JSON file (``ORCHESTRATOR_ROLE_MAP`` names it; docs/AUTH.md has the format)::

    grants:
      - claim: Deployments.Deploy          # an app role value, or a group's object id
        roles: [deployer]
        scopes: ["00000000-0000-0000-0000-000000000001/rg-app-*"]
      - claim: Deployments.Approve
        roles: [approver]
        scopes: ["*/*"]

A scope is ``<subscription id glob>/<resource group glob>`` (``*``, ``?`` and ``[...]`` as in shell globs, compared
case-insensitively as ARM compares names). Anything not granted is denied. Roles are separate: an approver is not a
deployer and a deployer is not an approver (four eyes); both imply reader for the scopes they are granted, since one
cannot approve a plan one may not read nor follow a deployment one started.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from api.auth import AuthConfigError
from api.identity import ROLES, Authorizer, Principal, Role

ENV_ROLE_MAP = "ORCHESTRATOR_ROLE_MAP"
_MAX_FILE_BYTES = 1024 * 1024

# Which roles each granted role also confers for the same scope.
IMPLIED_ROLES: dict[Role, frozenset[Role]] = {
    "deployer": frozenset({"deployer", "reader"}),
    "approver": frozenset({"approver", "reader"}),
    "reader": frozenset({"reader"}),
}


class RoleMapError(AuthConfigError):
    """The role map file is unusable; the message names the file and the field."""


@dataclass(frozen=True)
class Grant:
    claim: str
    roles: frozenset[Role]
    scopes: tuple[tuple[str, str], ...]  # (subscription glob, resource group glob), lower-cased

    def covers(self, subscription_id: str, resource_group: str) -> bool:
        sub, rg = subscription_id.lower(), resource_group.lower()
        return any(fnmatch.fnmatchcase(sub, s) and fnmatch.fnmatchcase(rg, r) for s, r in self.scopes)


@dataclass(frozen=True)
class RoleMap:
    """``api.identity.Authorizer``: deny by default, allow what a grant for one of the principal's claim values
    covers."""

    grants: tuple[Grant, ...] = ()
    source: str = "<empty>"

    def allows(self, principal: Principal, role: Role, subscription_id: str, resource_group: str) -> bool:
        if role not in IMPLIED_ROLES or not subscription_id or not resource_group:
            return False
        return any(
            grant.claim in principal.groups
            and any(role in IMPLIED_ROLES[granted] for granted in grant.roles)
            and grant.covers(subscription_id, resource_group)
            for grant in self.grants
        )

    def roles_for(self, principal: Principal, subscription_id: str, resource_group: str) -> frozenset[Role]:
        """Every role ``principal`` holds for that resource group (for a page that shows what one may do)."""
        return frozenset(r for r in ROLES if self.allows(principal, r, subscription_id, resource_group))


def parse_role_map(document: Any, *, source: str) -> RoleMap:
    """A role map from its parsed document; raises ``RoleMapError`` naming ``source`` and the field at fault."""

    def fail(where: str, problem: str) -> RoleMapError:
        return RoleMapError(f"{source}: {where}: {problem} (format: docs/AUTH.md, 'The role map')")

    if not isinstance(document, dict):
        raise fail("top level", "expected a mapping with a 'grants' list")
    unknown = sorted(set(document) - {"grants"})
    if unknown:
        raise fail(unknown[0], "unknown field; the top level holds only 'grants'")
    entries = document.get("grants")
    if not isinstance(entries, list):
        raise fail("grants", "missing or not a list")
    grants: list[Grant] = []
    for i, entry in enumerate(entries):
        where = f"grants[{i}]"
        if not isinstance(entry, dict):
            raise fail(where, "expected a mapping with 'claim', 'roles' and 'scopes'")
        extra = sorted(set(entry) - {"claim", "roles", "scopes", "description"})
        if extra:
            raise fail(f"{where}.{extra[0]}", "unknown field; a grant holds claim, roles, scopes (and description)")
        claim = entry.get("claim")
        if not isinstance(claim, str) or not claim.strip():
            raise fail(f"{where}.claim", "missing or empty; give an app role value or a group object id")
        roles = entry.get("roles")
        if isinstance(roles, str):
            roles = [roles]
        if not isinstance(roles, list) or not roles:
            raise fail(f"{where}.roles", f"missing or empty; give a list of {', '.join(ROLES)}")
        for j, role in enumerate(roles):
            if role not in ROLES:
                raise fail(f"{where}.roles[{j}]", f"{role!r} is not a role; use {', '.join(ROLES)}")
        scopes = entry.get("scopes")
        if isinstance(scopes, str):
            scopes = [scopes]
        if not isinstance(scopes, list) or not scopes:
            raise fail(f"{where}.scopes", "missing or empty; give '<subscription glob>/<resource group glob>' items")
        parsed: list[tuple[str, str]] = []
        for j, scope in enumerate(scopes):
            if not isinstance(scope, str) or scope.count("/") != 1 or any(not p for p in scope.split("/")):
                raise fail(
                    f"{where}.scopes[{j}]",
                    f"{scope!r} is not '<subscription glob>/<resource group glob>' (e.g. '*/rg-app-*')",
                )
            sub, rg = scope.lower().split("/")
            parsed.append((sub.strip(), rg.strip()))
        grants.append(Grant(claim=claim.strip(), roles=frozenset(roles), scopes=tuple(parsed)))
    return RoleMap(grants=tuple(grants), source=source)


def load_role_map(path: Path) -> RoleMap:
    """Read a role map file (``.json``, else YAML, which also reads JSON)."""
    try:
        if path.stat().st_size > _MAX_FILE_BYTES:
            raise RoleMapError(f"{path}: larger than {_MAX_FILE_BYTES} bytes; a role map is a short list of grants")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RoleMapError(f"{path}: no such role map file (set {ENV_ROLE_MAP} to an existing file)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RoleMapError(f"{path}: cannot read the role map: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        document = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise RoleMapError(f"{path}: not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        raise RoleMapError(f"{path}: not valid YAML{at}: {getattr(exc, 'problem', None) or exc}") from None
    return parse_role_map(document, source=str(path))


def role_map_from_env(environ: Mapping[str, str] | None = None) -> RoleMap | None:
    """The role map ``ORCHESTRATOR_ROLE_MAP`` names, or None when it is unset (the caller decides: the service
    refuses to start without one outside the local development mode)."""
    env = os.environ if environ is None else environ
    raw = env.get(ENV_ROLE_MAP, "").strip()
    return load_role_map(Path(raw).expanduser()) if raw else None


def _conforms(role_map: RoleMap) -> Authorizer:
    """mypy checks here that ``RoleMap`` is an ``api.identity.Authorizer``."""
    return role_map
