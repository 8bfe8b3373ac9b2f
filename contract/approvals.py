"""Verified approvals: the approval statement an approver signs, the proof that travels with it, what the worker's
verification found, and the operator's approval policy (trust roots and rules).

The statement is the one document a proof is about. Its canonical form is defined here once
(``canonical_statement``): the statement's fields as JSON with sorted keys, no whitespace, UTF-8, no ASCII
escaping; ``statement_digest`` is ``sha256:`` + the hex sha256 of those bytes. An SSH signature
(``ssh-keygen -Y sign -n APPROVAL_NAMESPACE``) or a relay's Ed25519 signature is made over exactly these bytes, so a
statement whose any field changed after signing no longer verifies. Example (docs/SECURITY.md shows it in full)::

    {"decision":"approve","destructive_set":["/subscriptions/…/sites/web"],"expires_at":"2026-12-06T13:15:00Z",
     "identity":"bo@example.com","issued_at":"2026-12-06T13:00:00Z","plan_hash":"sha256:9f…","reason":"planned",
     "round":1,"run_id":"0193…","statement_version":1,"workflow_id":"deploy-…-rg"}

Everything here is pure (no I/O): the workflow evaluates the policy's rules itself; checking a signature runs in an
activity (``activities/approvals.py``), which calls OpenSSH's own ``ssh-keygen -Y verify``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# The SSHSIG namespace reserved for these statements: a signature made for git commits, files or another tool
# (other namespaces) never verifies as an approval, and an approval signature is useless elsewhere.
APPROVAL_NAMESPACE = "approval@bicep-orchestrator"
STATEMENT_VERSION = 1
# Proof kinds: an OpenSSH SSHSIG signature, a trusted relay's Ed25519 attestation, or none (a claimed name).
PROOF_SSH = "ssh"
PROOF_RELAY = "relay"
PROOF_UNVERIFIED = "unverified"
PROOF_KINDS = (PROOF_SSH, PROOF_RELAY, PROOF_UNVERIFIED)
MAX_SIGNATURE_CHARS = 8192
# A statement issued up to this far in the future is accepted (clocks of approvers' machines drift).
CLOCK_SKEW = timedelta(minutes=5)
DEFAULT_STATEMENT_LIFETIME_SECONDS = 3600


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", use_enum_values=False)


def utc_text(moment: datetime) -> str:
    """A moment as the statement writes it: RFC 3339, UTC, whole seconds, ``Z``."""
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(text: str) -> datetime | None:
    try:
        moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError):
        return None
    return moment.replace(tzinfo=UTC)


class ApprovalStatement(_Model):
    """What an approver decides, bound to one run, one round and one plan. Times are text (``utc_text``) so the
    canonical form is exactly what was signed, whatever a reader's datetime parsing does."""

    statement_version: int = STATEMENT_VERSION
    workflow_id: str = Field(max_length=400)
    run_id: str = Field(max_length=80)
    round: int
    plan_hash: str = Field(max_length=80)
    destructive_set: list[str] = Field(max_length=5000)  # lower-cased resource ids, sorted
    decision: Literal["approve", "reject"]
    reason: str = Field(default="", max_length=2000)
    identity: str = Field(max_length=256)  # the approver's claimed identity: an allowed_signers principal
    issued_at: str = Field(max_length=32)
    expires_at: str = Field(max_length=32)


class StartStatement(_Model):
    """What an initiator signs when the approval policy requires a verified start (``require_signed_start``): this
    deployment of this template into this resource group, by this person. Same canonical form and proofs as the
    approval statement; ``identity`` must be the request's initiator."""

    statement_version: int = STATEMENT_VERSION
    kind: Literal["start"] = "start"
    workflow_id: str = Field(max_length=400)
    subscription_id: str = Field(max_length=80)
    resource_group: str = Field(max_length=200)
    template_digest: str = Field(max_length=80)
    mode: str = Field(max_length=20)
    identity: str = Field(max_length=256)
    issued_at: str = Field(max_length=32)
    expires_at: str = Field(max_length=32)


def canonical_statement(statement: ApprovalStatement | StartStatement) -> bytes:
    """The bytes a proof signs: the one canonical form of a statement."""
    return json.dumps(
        statement.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def statement_digest(statement: ApprovalStatement | StartStatement) -> str:
    return "sha256:" + hashlib.sha256(canonical_statement(statement)).hexdigest()


class ApprovalProof(_Model):
    """How the statement is proven: ``ssh`` (an armored SSHSIG signature, ``-----BEGIN SSH SIGNATURE-----``) or
    ``relay`` (base64 of an Ed25519 signature by the relay key ``key_id`` the policy lists)."""

    kind: Literal["ssh", "relay"]
    signature: str = Field(max_length=MAX_SIGNATURE_CHARS)
    key_id: str | None = Field(default=None, max_length=200)  # relay: which of its keys signed


class VerificationResult(_Model):
    """What the worker found checking one decision's proof: recorded with the decision and in the audit."""

    verified: bool
    proof_kind: str  # ssh, relay, unverified
    identity: str  # the verified principal (or, unverified, the claimed name)
    why: str = ""  # why it did not verify
    failure: str | None = None  # bad-signature, unknown-signer, untrusted-relay, no-trust-root ...
    key_fingerprint: str | None = None  # ssh: SHA256:… of the signing key; relay: the key id
    signer_entry: str | None = None  # ssh: the allowed_signers line that verified it (re-checked offline)
    policy_digest: str | None = None  # the trust root: the approval policy in force, by digest
    statement_digest: str | None = None
    checked_at: str | None = None  # utc_text of the check (offline re-verification checks validity at this time)
    # The policy document itself, when it is not the one the run recorded at its start (the worker's file changed)
    policy: TrustPolicy | None = None


class RelayKey(_Model):
    """A trusted relay (a service that authenticated the person itself, e.g. with OpenID Connect)."""

    key_id: str
    public_key: str  # base64 of the raw 32-byte Ed25519 public key
    name: str = ""


class ApprovalScope(_Model):
    """Rules for the resource groups matching ``subscription``/``resource_group`` (shell patterns, case-insensitive).
    The first scope that matches applies."""

    subscription: str = "*"
    resource_group: str = "*"
    approvers: list[str] = Field(default_factory=lambda: ["*"])  # principals; "*" any verified identity
    required_approvals: int = Field(default=1, ge=1, le=20)  # distinct approvers a deletion needs (N of M)
    skip_confirmation: list[str] = Field(default_factory=list)  # initiators allowed --no-confirm-deletes

    def matches(self, subscription: str, resource_group: str) -> bool:
        return fnmatch.fnmatchcase(subscription.lower(), self.subscription.lower()) and fnmatch.fnmatchcase(
            resource_group.lower(), self.resource_group.lower()
        )


class TrustPolicy(_Model):
    """The operator's approval policy (a TOML file the worker loads, docs/SECURITY.md): which proofs are accepted,
    the trust roots (an OpenSSH allowed_signers document, relay keys) and the rules per scope. Public keys only: it is
    recorded in history, so an audit names — and can re-verify against — the policy in force when it decided."""

    policy_version: int = 1
    accepted_proofs: list[str] = Field(default_factory=lambda: [PROOF_SSH])
    statement_lifetime_seconds: int = Field(default=DEFAULT_STATEMENT_LIFETIME_SECONDS, ge=30)
    initiator_may_approve: bool = False
    # The initiator proves who they are too (``deploy --key``): "approver ≠ initiator" then compares two verified
    # identities. A start without a valid signed start statement is refused before any stage.
    require_signed_start: bool = False
    allowed_signers: str = ""  # the allowed_signers document's text (OpenSSH format)
    relays: list[RelayKey] = Field(default_factory=list)
    scopes: list[ApprovalScope] = Field(default_factory=list)  # none: any verified identity, one approval
    source: str = ""  # where the worker read it (not part of the digest)

    def digest(self) -> str:
        document = self.model_dump(mode="json", exclude={"source"})
        text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()

    def accepts(self, kind: str) -> bool:
        return kind in self.accepted_proofs

    def scope_for(self, subscription: str, resource_group: str) -> ApprovalScope:
        for scope in self.scopes:
            if scope.matches(subscription, resource_group):
                return scope
        return ApprovalScope(approvers=[], required_approvals=1) if self.scopes else ApprovalScope()

    def refusal(
        self,
        *,
        identity: str,
        initiator: str,
        approving: bool,
        subscription: str,
        resource_group: str,
    ) -> str | None:
        """Why ``identity`` (verified, or claimed where the policy accepts unverified) may not decide, or None."""
        who = identity.strip().lower()
        scope = self.scope_for(subscription, resource_group)
        allowed = {a.strip().lower() for a in scope.approvers}
        self_rejection = not approving and who == initiator.strip().lower()
        if "*" not in allowed and who not in allowed and not self_rejection:
            where = f"{subscription}/{resource_group}"
            return f"{identity!r} is not an approver for {where} in the approval policy {self.digest()[:19]}…"
        if approving and who == initiator.strip().lower() and not self.initiator_may_approve:
            return f"{identity!r} started this deployment; the approval policy requires someone else to approve it"
        return None

    def required_approvals(self, subscription: str, resource_group: str) -> int:
        return self.scope_for(subscription, resource_group).required_approvals

    def skip_refusal(self, *, initiator: str, subscription: str, resource_group: str) -> str | None:
        scope = self.scope_for(subscription, resource_group)
        if initiator.strip().lower() in {s.strip().lower() for s in scope.skip_confirmation}:
            return None
        return (
            f"the approval policy ({self.source or self.digest()}) requires approved deletions in "
            f"{subscription}/{resource_group}, so --no-confirm-deletes is refused for {initiator!r} (the scope's "
            "skip_confirmation lists the initiators it is allowed for)"
        )


def statement_problem(
    statement: ApprovalStatement,
    *,
    workflow_id: str,
    run_id: str,
    round_number: int,
    plan_hash: str | None,
    destructive_set: list[str],
    decision: str,
    now: datetime,
    lifetime_seconds: int,
) -> tuple[str, str] | None:
    """Whether a statement is for this decision, now: None, or (kind, why). Pure, so the workflow runs it before
    spending an activity on the signature."""
    if statement.statement_version != STATEMENT_VERSION:
        return "malformed", f"statement_version {statement.statement_version} is not {STATEMENT_VERSION}"
    if statement.decision != decision:
        return "malformed", f"the statement says {statement.decision!r} but was sent as {decision!r}"
    if statement.workflow_id != workflow_id or statement.run_id != run_id:
        return "other-run", (
            f"the statement is for {statement.workflow_id} run {statement.run_id}, not this run ({run_id})"
        )
    if statement.round != round_number:
        return "other-round", f"the statement is for round {statement.round}; round {round_number} is pending"
    if statement.plan_hash != plan_hash:
        return "other-plan", f"the statement names plan {statement.plan_hash}; the pending plan is {plan_hash}"
    if sorted(s.lower() for s in statement.destructive_set) != sorted(s.lower() for s in destructive_set):
        return "other-plan", "the statement names a different set of deletions than the pending plan"
    issued, expires = parse_utc(statement.issued_at), parse_utc(statement.expires_at)
    if issued is None or expires is None:
        return "malformed", "issued_at and expires_at must read YYYY-MM-DDTHH:MM:SSZ"
    if expires - issued > timedelta(seconds=lifetime_seconds) or expires < issued:
        return "expired", (
            f"the statement is valid {int((expires - issued).total_seconds())} s; the policy allows at most "
            f"{lifetime_seconds} s"
        )
    if now >= expires:
        return "expired", f"the statement expired at {statement.expires_at}"
    if issued > now + CLOCK_SKEW:
        return "expired", f"the statement is issued in the future ({statement.issued_at})"
    return None


def summary_of(result: VerificationResult | None) -> str:
    """One line for status and the audit: how the identity is known."""
    if result is None:
        return "unverified (claimed)"
    if result.verified:
        how = f"{result.proof_kind} {result.key_fingerprint or ''}".strip()
        return f"verified ({how}; policy {(result.policy_digest or '')[:19]}…)"
    return f"NOT verified: {result.why}"


def as_document(model: BaseModel | None) -> dict[str, Any] | None:
    return None if model is None else model.model_dump(mode="json")


class DecisionEvidence(_Model):
    """One decision the workflow took into account, with everything an auditor needs to check it again offline:
    the statement, its proof, what verification found and the trust root (the policy digest) it used."""

    decision: str  # approve, reject
    identity: str
    reason: str = ""
    statement: ApprovalStatement | None = None  # None: an unsigned (unverified) decision
    proof: ApprovalProof | None = None
    verification: VerificationResult
    at: str = ""


class VerifyApprovalInput(_Model):
    """Input of the ``verify_approval`` activity. ``policy``: the policy recorded when the run started, used when
    the worker has no policy file of its own (the activity otherwise reads its current file: a signer removed since
    no longer verifies)."""

    statement: ApprovalStatement | None = None
    proof: ApprovalProof
    policy: TrustPolicy
    start: StartStatement | None = None  # a signed start instead of a decision


def start_problem(
    statement: StartStatement,
    *,
    workflow_id: str,
    subscription_id: str,
    resource_group: str,
    template_digest: str,
    mode: str,
    initiator: str,
    now: datetime,
    lifetime_seconds: int,
) -> str | None:
    """Whether a start statement is for this request, now: None, or why not."""
    expected = (workflow_id, subscription_id.lower(), resource_group.lower(), template_digest, mode, initiator)
    found = (statement.workflow_id, statement.subscription_id.lower(), statement.resource_group.lower(),
             statement.template_digest, statement.mode, statement.identity)  # fmt: skip
    if found != expected:
        names = ("workflow id", "subscription", "resource group", "template digest", "mode", "initiator")
        wrong = [n for n, a, b in zip(names, found, expected, strict=True) if a != b]
        return f"the start statement names another {', '.join(wrong)} than this deployment"
    issued, expires = parse_utc(statement.issued_at), parse_utc(statement.expires_at)
    if issued is None or expires is None or expires < issued:
        return "issued_at and expires_at must read YYYY-MM-DDTHH:MM:SSZ, in that order"
    if expires - issued > timedelta(seconds=lifetime_seconds) or now >= expires or issued > now + CLOCK_SKEW:
        return f"the start statement is not current (issued {statement.issued_at}, expires {statement.expires_at})"
    return None


VerificationResult.model_rebuild()
