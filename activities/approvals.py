"""Verified approvals: the ``verify_approval`` activity checks one signed decision's proof (``ssh-keygen -Y verify``
or a relay's Ed25519 signature, ``services/approvals.py``). It is I/O (a subprocess, the policy file), so it runs
here and the workflow records its result.

The policy used is the worker's current file when it has one (re-read at each check, so a signer removed from
allowed_signers stops verifying new decisions at once, even for runs started before), else the policy the run
recorded when it started. The result names the policy by digest; the workflow keeps the policy document too when
the digest differs from the one it recorded (``policy`` in the result), so an audit can re-verify offline.
"""

from __future__ import annotations

from pathlib import Path

from temporalio import activity

from contract.approvals import VerificationResult, VerifyApprovalInput
from contract.models import ActivityName
from services.approvals import PolicyError, load_policy, verify_proof


class ApprovalActivities:
    def __init__(self, policy_path: Path | None) -> None:
        self._policy_path = policy_path

    @activity.defn(name=ActivityName.VERIFY_APPROVAL)
    async def verify_approval(self, inp: VerifyApprovalInput) -> VerificationResult:
        policy = inp.policy
        statement = inp.statement or inp.start
        if statement is None:
            return VerificationResult(
                verified=False, proof_kind=inp.proof.kind, identity="", why="no statement", failure="malformed"
            )
        if self._policy_path is not None:
            try:
                policy = load_policy(self._policy_path)
            except PolicyError as exc:  # fail closed: a policy the worker cannot read verifies nothing
                return VerificationResult(
                    verified=False,
                    proof_kind=inp.proof.kind,
                    identity=statement.identity,
                    why=f"the worker cannot read its approval policy: {exc}",
                    failure="no-trust-root",
                )
        result = verify_proof(statement, inp.proof, policy=policy)
        changed = result.policy_digest != inp.policy.digest()
        return result.model_copy(update={"policy": policy}) if changed else result
