"""Real OpenSSH keys and an approval policy for the verified-approval tests: keys made with ``ssh-keygen`` in a
temporary folder, an allowed_signers file naming them (one with a validity window that has ended), a relay key pair,
and helpers that write and sign approval statements as an attacker with a Temporal client could."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contract.approvals import ApprovalProof, ApprovalStatement, utc_text
from services.approvals import sign_relay, sign_ssh


def require_ssh_keygen() -> str:
    found = shutil.which("ssh-keygen")
    if found is None:
        pytest.skip("ssh-keygen (openssh-client) is not installed: `make test` installs it")
    return found


def make_key(folder: Path, name: str) -> Path:
    path = folder / f"{name}_ed25519"
    subprocess.run([require_ssh_keygen(), "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True)
    return path


def public_line(key: Path) -> str:
    return " ".join(Path(f"{key}.pub").read_text().split()[:2])


@dataclass
class ApprovalKeys:
    folder: Path
    keys: dict[str, Path] = field(default_factory=dict)
    relay_private: Any = None
    rogue_relay_private: Any = None
    policy: Path | None = None


def make_approval_keys(
    folder: Path,
    *,
    initiator: str,
    listed: tuple[str, ...] = ("ana", "bo"),
    expired: str = "old",
    unlisted: str = "cy",
    scopes: str = "",
    accepted: tuple[str, ...] = ("ssh", "relay"),
) -> ApprovalKeys:
    """Keys for ``listed`` people and the initiator (all in allowed_signers), ``expired`` (listed with a validity
    window that ended in 2020) and ``unlisted`` (not in allowed_signers); a trusted relay and a rogue one; the
    policy file (TOML) the worker loads."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    out = ApprovalKeys(folder)
    for name in (*listed, initiator, expired, unlisted):
        out.keys[name] = make_key(folder, name)
    lines = [f"{name} namespaces=\"approval@bicep-orchestrator\" {public_line(out.keys[name])}"
             for name in (*listed, initiator)]  # fmt: skip
    lines.append(f'{expired} valid-before="20200101" {public_line(out.keys[expired])}')
    (folder / "allowed_signers").write_text("\n".join(lines) + "\n")
    out.relay_private = Ed25519PrivateKey.generate()
    out.rogue_relay_private = Ed25519PrivateKey.generate()
    raw = out.relay_private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    approvers = json.dumps([*listed, initiator, expired])
    out.policy = folder / "approval-policy.toml"
    out.policy.write_text(
        f"accepted_proofs = {json.dumps(list(accepted))}\n"
        "statement_lifetime_seconds = 900\n"
        'allowed_signers = "allowed_signers"\n'
        f"{scopes}"
        "[[scope]]\n"
        f"approvers = {approvers}\n"
        "[[relay]]\n"
        'key_id = "team-api-1"\n'
        f'public_key = "{base64.b64encode(raw).decode()}"\n'
    )
    return out


def statement_for(
    pending: dict[str, Any],
    *,
    workflow_id: str,
    run_id: str,
    identity: str,
    decision: str = "approve",
    reason: str = "reviewed",
    issued: datetime | None = None,
    lifetime: timedelta = timedelta(minutes=10),
    **override: Any,
) -> ApprovalStatement:
    """A statement for the pending confirmation of ``status --output json`` (``override`` changes any field)."""
    issued = issued or datetime.now(UTC)
    fields: dict[str, Any] = {
        "workflow_id": workflow_id,
        "run_id": run_id,
        "round": pending["round"],
        "plan_hash": pending["plan_hash"],
        "destructive_set": sorted({c["resource_id"].lower() for c in pending["destructive_changes"]}),
        "decision": decision,
        "reason": reason,
        "identity": identity,
        "issued_at": utc_text(issued),
        "expires_at": utc_text(issued + lifetime),
    }
    fields.update(override)
    return ApprovalStatement(**fields)


def ssh_payload(statement: ApprovalStatement, key: Path, **edit: Any) -> str:
    """The signal's JSON input: the statement signed with ``key``; ``edit`` changes the statement after signing (a
    tampered statement)."""
    proof = ApprovalProof(kind="ssh", signature=sign_ssh(statement, key=str(key)))
    return _payload(statement.model_copy(update=edit) if edit else statement, proof)


def relay_payload(statement: ApprovalStatement, private_key: Any, key_id: str = "team-api-1") -> str:
    return _payload(statement, sign_relay(statement, private_key=private_key, key_id=key_id))


def _payload(statement: ApprovalStatement, proof: ApprovalProof) -> str:
    return json.dumps(
        {
            "approver": statement.identity,
            "reason": statement.reason,
            "plan_hash": statement.plan_hash,
            "statement": statement.model_dump(mode="json"),
            "proof": proof.model_dump(mode="json", exclude_none=True),
        }
    )
