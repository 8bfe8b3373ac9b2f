"""Verified approvals, the I/O half: the operator's approval policy file, OpenSSH signatures (``ssh-keygen -Y``, the
same SSHSIG format and allowed_signers trust model as git's SSH commit signing) and trusted relays' Ed25519
attestations. The statement, its canonical form and the policy's rules are in ``contract/approvals.py``.

Signatures are never parsed here: ``ssh-keygen -Y verify`` checks the signature, the namespace, the principal and
the signer's validity window against the allowed_signers document; ``cryptography`` checks a relay's Ed25519
signature.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from contract.approvals import (
    APPROVAL_NAMESPACE,
    PROOF_KINDS,
    PROOF_RELAY,
    PROOF_SSH,
    ApprovalProof,
    ApprovalStatement,
    StartStatement,
    TrustPolicy,
    VerificationResult,
    canonical_statement,
    parse_utc,
    statement_digest,
    utc_text,
)

ENV_APPROVAL_POLICY = "ORCHESTRATOR_APPROVAL_POLICY"
SSH_KEYGEN_ENV = "ORCHESTRATOR_SSH_KEYGEN"
MAX_POLICY_BYTES = 1024 * 1024
SSH_TIMEOUT_SECONDS = 20


class PolicyError(ValueError):
    """The approval policy file cannot be used; the message names the file and what to fix."""


def ssh_keygen() -> str:
    found = os.environ.get(SSH_KEYGEN_ENV) or shutil.which("ssh-keygen")
    if not found:
        raise FileNotFoundError("ssh-keygen (OpenSSH) is not installed; install openssh-client")
    return found


# ----------------------------------------------------------------------------------------------- the policy


def load_policy(path: Path) -> TrustPolicy:
    """Read the approval policy (TOML, docs/SECURITY.md). ``allowed_signers`` names an OpenSSH allowed_signers file
    (relative to the policy file) whose text becomes part of the policy, so history records the trust root."""
    try:
        if not path.is_file():
            raise PolicyError(f"the approval policy {path} ({ENV_APPROVAL_POLICY}) is not a regular file")
        raw = path.read_bytes()[: MAX_POLICY_BYTES + 1]
    except OSError as exc:
        raise PolicyError(f"cannot read the approval policy {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_POLICY_BYTES:
        raise PolicyError(f"the approval policy {path} is larger than {MAX_POLICY_BYTES} bytes")
    try:
        document: dict[str, Any] = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"the approval policy {path} is not valid TOML: {exc}") from None
    signers = document.pop("allowed_signers", None)
    if signers is not None:
        if not isinstance(signers, str):
            raise PolicyError(f"{path}: allowed_signers must name a file (OpenSSH allowed_signers format)")
        signers_path = (path.parent / signers).resolve()
        try:
            document["allowed_signers"] = signers_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(f"{path}: cannot read the allowed_signers file {signers_path}: {exc}") from None
    if "scope" in document:
        document["scopes"] = document.pop("scope")
    if "relay" in document:
        document["relays"] = document.pop("relay")
    try:
        policy = TrustPolicy.model_validate({**document, "source": str(path)})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "policy"
        raise PolicyError(f"the approval policy {path}: {where}: {first.get('msg')}") from None
    unknown = [k for k in policy.accepted_proofs if k not in PROOF_KINDS]
    if unknown:
        raise PolicyError(f"{path}: accepted_proofs lists {unknown}; known proof kinds: {', '.join(PROOF_KINDS)}")
    if not policy.accepted_proofs:
        raise PolicyError(f"{path}: accepted_proofs is empty, so no decision could ever be taken")
    if PROOF_SSH in policy.accepted_proofs and not policy.allowed_signers.strip():
        raise PolicyError(f"{path}: accepts ssh proofs but names no allowed_signers file")
    for relay in policy.relays:
        if _relay_key(relay.public_key) is None:
            raise PolicyError(f"{path}: relay {relay.key_id!r}: public_key is not base64 of a 32-byte Ed25519 key")
    return policy


def policy_from_env(environ: dict[str, str] | os._Environ[str]) -> TrustPolicy | None:
    path = environ.get(ENV_APPROVAL_POLICY)
    return load_policy(Path(path)) if path else None


# ------------------------------------------------------------------------------------------- SSH signatures


_GOOD = re.compile(r'Good "[^"]*" signature for (?P<principal>.+?) with (?P<type>\S+) key (?P<fp>SHA256:\S+)')


def sign_ssh(statement: ApprovalStatement | StartStatement, *, key: str, environ: dict[str, str] | None = None) -> str:
    """Sign with ``ssh-keygen -Y sign`` (``key``: a private key file, or a public key whose private half ssh-agent
    holds). Returns the armored signature. Raises ``RuntimeError`` with ssh-keygen's own words on failure."""
    done = subprocess.run(
        [ssh_keygen(), "-q", "-Y", "sign", "-f", key, "-n", APPROVAL_NAMESPACE],
        input=canonical_statement(statement),
        capture_output=True,
        timeout=120,
        env=environ,
        check=False,
    )
    if done.returncode != 0 or b"BEGIN SSH SIGNATURE" not in done.stdout:
        raise RuntimeError(done.stderr.decode("utf-8", "replace").strip() or f"ssh-keygen exited {done.returncode}")
    return done.stdout.decode("ascii").strip()


def verify_ssh(
    statement: ApprovalStatement | StartStatement,
    proof: ApprovalProof,
    *,
    allowed_signers: str,
    at: datetime | None = None,
) -> VerificationResult:
    """``ssh-keygen -Y verify`` of ``proof`` over the statement's canonical bytes, for the principal the statement
    names, in the approvals namespace, against ``allowed_signers`` (its validity windows checked at ``at``, default
    now)."""
    result = VerificationResult(
        verified=False, proof_kind=PROOF_SSH, identity=statement.identity, statement_digest=statement_digest(statement)
    )
    if not allowed_signers.strip():
        return result.model_copy(update={"why": "the policy lists no allowed signers", "failure": "no-trust-root"})
    if not _plain_principal(statement.identity):
        return result.model_copy(
            update={"why": "the identity cannot be an allowed_signers principal", "failure": "unknown-signer"}
        )
    with tempfile.TemporaryDirectory(prefix="approval-verify-") as folder:
        signers = Path(folder, "allowed_signers")
        signers.write_text(allowed_signers, encoding="utf-8")
        signature = Path(folder, "statement.sig")
        signature.write_text(proof.signature + "\n", encoding="ascii", errors="replace")
        command = [ssh_keygen(), "-Y", "verify", "-f", str(signers), "-I", statement.identity,
                   "-n", APPROVAL_NAMESPACE, "-s", str(signature)]  # fmt: skip
        if at is not None:
            command[3:3] = ["-O", f"verify-time={at.astimezone(UTC).strftime('%Y%m%d%H%M%S')}Z"]
        try:
            done = subprocess.run(
                command, input=canonical_statement(statement), capture_output=True, timeout=SSH_TIMEOUT_SECONDS
            )
            text = (done.stdout + done.stderr).decode("utf-8", "replace")
            if done.returncode != 0 and "expired" not in text and "not yet valid" not in text:
                # Is the signing key listed for this identity at all? (verify alone does not say)
                found = subprocess.run(
                    [ssh_keygen(), "-Y", "find-principals", "-f", str(signers), "-s", str(signature)],
                    capture_output=True, timeout=SSH_TIMEOUT_SECONDS,
                )  # fmt: skip
                principals = found.stdout.decode("utf-8", "replace").split()
                if found.returncode != 0 or statement.identity not in principals:
                    text += " No principal matched."
        except subprocess.TimeoutExpired:
            return result.model_copy(update={"why": "ssh-keygen did not answer", "failure": "verifier-error"})
    good = _GOOD.search(text)
    if done.returncode == 0 and good and good.group("principal") == statement.identity:
        entry = signer_entry(allowed_signers, statement.identity, good.group("fp"))
        return result.model_copy(update={"verified": True, "key_fingerprint": good.group("fp"), "signer_entry": entry})
    return result.model_copy(update=_ssh_failure(text))


def _ssh_failure(text: str) -> dict[str, str]:
    lowered = text.lower()
    if "usage:" in lowered:
        failure, why = "verifier-error", "ssh-keygen refused the verification command"
    elif "expired" in lowered or "not yet valid" in lowered or "valid-before" in lowered or "valid-after" in lowered:
        failure, why = "signer-not-valid", "the signing key is outside its validity window in allowed_signers"
    elif "namespace" in lowered:
        failure, why = "bad-signature", "the signature is for another namespace"
    elif "incorrect signature" in lowered:
        failure, why = "bad-signature", "the signature does not verify over this statement"
    elif "no principal matched" in lowered:
        failure, why = "unknown-signer", "the signing key is not in allowed_signers for this identity"
    elif "namespace" in lowered:
        failure, why = "bad-signature", "the signature is for another namespace"
    else:
        failure, why = "bad-signature", "the signature does not verify over this statement"
    detail = " ".join(text.split())[:200]
    return {"failure": failure, "why": f"{why} (ssh-keygen: {detail})" if detail else why}


def _plain_principal(identity: str) -> bool:
    return bool(identity) and not any(c.isspace() or c in ',"*?!' or ord(c) < 32 for c in identity)


def signer_entry(allowed_signers: str, principal: str, fingerprint: str) -> str | None:
    """The allowed_signers line naming ``principal`` whose key has ``fingerprint`` (kept with the verification, so
    the audit shows the exact trust entry)."""
    for line in allowed_signers.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        names = stripped.split(None, 1)[0]
        if principal.lower() not in {n.lower() for n in names.split(",")}:
            continue
        key = _key_of(stripped)
        if key is not None and _fingerprint(key) == fingerprint:
            return stripped
    return None


def _key_of(line: str) -> str | None:
    match = re.search(r"(ssh-ed25519|ssh-rsa|ecdsa-sha2-\S+|sk-\S+)\s+(\S+)", line)
    return f"{match.group(1)} {match.group(2)}" if match else None


def _fingerprint(public_key: str) -> str | None:
    import hashlib

    try:
        blob = base64.b64decode(public_key.split()[1])
    except (IndexError, binascii.Error):
        return None
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


# ------------------------------------------------------------------------------------------------ relays


def _relay_key(text: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        raw = base64.b64decode(text, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw) if len(raw) == 32 else None
    except (binascii.Error, ValueError):
        return None


def sign_relay(statement: ApprovalStatement | StartStatement, *, private_key: Any, key_id: str) -> ApprovalProof:
    """What a relay sends: its Ed25519 signature over the canonical statement (``private_key``: an
    ``Ed25519PrivateKey``)."""
    signature = private_key.sign(canonical_statement(statement))
    return ApprovalProof(kind="relay", signature=base64.b64encode(signature).decode("ascii"), key_id=key_id)


def verify_relay(
    statement: ApprovalStatement | StartStatement, proof: ApprovalProof, *, policy: TrustPolicy
) -> VerificationResult:
    from cryptography.exceptions import InvalidSignature

    result = VerificationResult(
        verified=False,
        proof_kind=PROOF_RELAY,
        identity=statement.identity,
        key_fingerprint=proof.key_id,
        statement_digest=statement_digest(statement),
    )
    relay = next((r for r in policy.relays if r.key_id == proof.key_id), None)
    key = _relay_key(relay.public_key) if relay is not None else None
    if key is None:
        return result.model_copy(
            update={"why": f"relay key {proof.key_id!r} is not trusted by the policy", "failure": "untrusted-relay"}
        )
    try:
        key.verify(base64.b64decode(proof.signature, validate=True), canonical_statement(statement))
    except (InvalidSignature, binascii.Error, ValueError):
        return result.model_copy(
            update={
                "why": f"relay {proof.key_id!r}'s signature does not verify over this statement",
                "failure": "bad-signature",
            }
        )
    return result.model_copy(update={"verified": True})


# ------------------------------------------------------------------------------------------------ verify


def verify_proof(
    statement: ApprovalStatement | StartStatement,
    proof: ApprovalProof,
    *,
    policy: TrustPolicy,
    at: datetime | None = None,
) -> VerificationResult:
    """Check one proof against ``policy`` (its kind must be accepted). The result names the policy by digest."""
    checked = at or datetime.now(UTC)
    if not policy.accepts(proof.kind):
        result = VerificationResult(
            verified=False,
            proof_kind=proof.kind,
            identity=statement.identity,
            why=f"the approval policy does not accept {proof.kind} proofs (it accepts "
            f"{', '.join(policy.accepted_proofs)})",
            failure="proof-kind-refused",
            statement_digest=statement_digest(statement),
        )
    elif proof.kind == PROOF_SSH:
        result = verify_ssh(statement, proof, allowed_signers=policy.allowed_signers, at=at)
    else:
        result = verify_relay(statement, proof, policy=policy)
    return result.model_copy(update={"policy_digest": policy.digest(), "checked_at": utc_text(checked)})


def reverify(
    statement: ApprovalStatement | StartStatement,
    proof: ApprovalProof,
    recorded: VerificationResult,
    policy: TrustPolicy,
) -> str | None:
    """Offline re-verification of a recorded decision (``verify-approvals``): None if it still verifies against the
    policy the record names, at the moment it was checked; otherwise why not."""
    if recorded.policy_digest != policy.digest():
        return f"the record's policy has digest {policy.digest()}, but the decision names {recorded.policy_digest}"
    if recorded.statement_digest != statement_digest(statement):
        return "the statement is not the one that was verified (its digest differs)"
    at = parse_utc(recorded.checked_at or "") if recorded.checked_at else None
    again = verify_proof(statement, proof, policy=policy, at=at)
    if not again.verified:
        return again.why
    if again.identity != recorded.identity:
        return f"the proof verifies for {again.identity}, but the record says {recorded.identity}"
    return None
