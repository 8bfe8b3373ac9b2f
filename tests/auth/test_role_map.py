"""The role map: claim values (app roles, group ids) to deployer/approver/reader per subscription/resource-group
pattern; deny by default; a bad file is refused naming the file and the field. The principals come from real tokens
of the local provider, so the claims the map reads are the ones the authenticator produces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.auth import AuthConfigError, OidcAuthenticator
from api.identity import Principal
from api.role_map import RoleMap, RoleMapError, load_role_map, role_map_from_env
from harness.oidc_provider import OidcProvider

SUB_A = "00000000-0000-0000-0000-00000000000a"
SUB_B = "00000000-0000-0000-0000-00000000000b"
PLATFORM_GROUP = "5b1e7c57-6a4f-4c52-9d2e-2f0e5a7d1b11"

ROLE_MAP_YAML = f"""
grants:
  - claim: Deployments.Deploy
    description: pipelines deploy to rg-a of subscription A only
    roles: [deployer]
    scopes: ["{SUB_A}/rg-a"]
  - claim: Deployments.Approve
    roles: [approver]
    scopes: ["*/*"]
  - claim: {PLATFORM_GROUP}
    roles: [reader]
    scopes: ["{SUB_A}/rg-*", "{SUB_B.upper()}/RG-SHARED"]
"""


@pytest.fixture
def role_map(tmp_path: Path) -> RoleMap:
    path = tmp_path / "roles.yaml"
    path.write_text(ROLE_MAP_YAML)
    return load_role_map(path)


async def principal(idp: OidcProvider, authenticator: OidcAuthenticator, **claims: object) -> Principal:
    return await authenticator.authenticate("Bearer " + idp.mint(**claims))  # type: ignore[arg-type]


async def test_roles_per_pattern(idp: OidcProvider, authenticator: OidcAuthenticator, role_map: RoleMap) -> None:
    deployer = await principal(idp, authenticator, roles=["Deployments.Deploy"])
    approver = await principal(idp, authenticator, roles=["Deployments.Approve"])
    reader = await principal(idp, authenticator, groups=[PLATFORM_GROUP])
    nobody = await principal(idp, authenticator, roles=["Something.Else"], groups=["another-group"])

    # deployer on rg-a only; it implies reader there, never approver
    assert role_map.allows(deployer, "deployer", SUB_A, "rg-a")
    assert role_map.allows(deployer, "deployer", SUB_A.upper(), "RG-A")  # ARM compares names case-insensitively
    assert role_map.allows(deployer, "reader", SUB_A, "rg-a")
    assert not role_map.allows(deployer, "approver", SUB_A, "rg-a")
    assert not role_map.allows(deployer, "deployer", SUB_A, "rg-a2")
    assert not role_map.allows(deployer, "deployer", SUB_A, "rg-b")
    assert not role_map.allows(deployer, "deployer", SUB_B, "rg-a")

    # approver everywhere; implies reader, never deployer
    assert role_map.allows(approver, "approver", SUB_B, "rg-anything")
    assert role_map.allows(approver, "reader", SUB_A, "rg-a")
    assert not role_map.allows(approver, "deployer", SUB_A, "rg-a")

    # reader by group id, with several patterns
    assert role_map.roles_for(reader, SUB_A, "rg-x") == {"reader"}
    assert role_map.roles_for(reader, SUB_B, "rg-shared") == {"reader"}
    assert role_map.roles_for(reader, SUB_B, "rg-other") == frozenset()

    # deny by default
    assert role_map.roles_for(nobody, SUB_A, "rg-a") == frozenset()
    assert not RoleMap().allows(approver, "reader", SUB_A, "rg-a")
    assert not role_map.allows(approver, "admin", SUB_A, "rg-a")  # type: ignore[arg-type]
    assert not role_map.allows(approver, "approver", "", "rg-a")


async def test_both_roles_only_when_both_are_granted(
    idp: OidcProvider, authenticator: OidcAuthenticator, role_map: RoleMap
) -> None:
    both = await principal(idp, authenticator, roles=["Deployments.Deploy", "Deployments.Approve"])
    assert role_map.roles_for(both, SUB_A, "rg-a") == {"deployer", "approver", "reader"}
    assert role_map.roles_for(both, SUB_A, "rg-b") == {"approver", "reader"}


def test_a_json_role_map_and_the_env_var(tmp_path: Path) -> None:
    path = tmp_path / "roles.json"
    path.write_text(json.dumps({"grants": [{"claim": "R", "roles": "reader", "scopes": "*/rg-?"}]}))
    role_map = role_map_from_env({"ORCHESTRATOR_ROLE_MAP": str(path)})
    assert role_map is not None and role_map.source == str(path)
    who = Principal(subject="s", name="n", issuer="https://i", groups=frozenset({"R"}))
    assert role_map.allows(who, "reader", SUB_A, "rg-1")
    assert not role_map.allows(who, "reader", SUB_A, "rg-12")
    assert role_map_from_env({}) is None


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("grants: [", "not valid YAML at line 1"),
        ("- a\n- b\n", "top level: expected a mapping with a 'grants' list"),
        ("grant: []\n", "grant: unknown field"),
        ("grants: {}\n", "grants: missing or not a list"),
        ("grants:\n  - roles: [reader]\n    scopes: ['*/*']\n", "grants[0].claim: missing or empty"),
        (
            "grants:\n  - claim: R\n    roles: [reader, admin]\n    scopes: ['*/*']\n",
            "grants[0].roles[1]: 'admin' is not a role; use deployer, approver, reader",
        ),
        ("grants:\n  - claim: R\n    roles: []\n    scopes: ['*/*']\n", "grants[0].roles: missing or empty"),
        ("grants:\n  - claim: R\n    roles: [reader]\n", "grants[0].scopes: missing or empty"),
        (
            "grants:\n  - claim: R\n    roles: [reader]\n    scopes: ['*/*']\n"
            "  - claim: S\n    roles: [reader]\n    scopes: ['rg-a']\n",
            "grants[1].scopes[0]: 'rg-a' is not '<subscription glob>/<resource group glob>'",
        ),
        (
            "grants:\n  - claim: R\n    role: [reader]\n    scopes: ['*/*']\n",
            "grants[0].role: unknown field",
        ),
    ],
)
def test_a_bad_file_names_the_file_and_the_field(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "roles.yaml"
    path.write_text(content)
    with pytest.raises(RoleMapError) as caught:
        load_role_map(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert isinstance(caught.value, AuthConfigError)


def test_a_missing_or_bad_json_file(tmp_path: Path) -> None:
    with pytest.raises(RoleMapError, match="no such role map file"):
        role_map_from_env({"ORCHESTRATOR_ROLE_MAP": str(tmp_path / "absent.yaml")})
    path = tmp_path / "roles.json"
    path.write_text('{"grants": [}')
    with pytest.raises(RoleMapError, match=r"roles.json: not valid JSON at line 1 column 13"):
        load_role_map(path)
