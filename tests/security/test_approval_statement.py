"""The approval statement's canonical form and digest (pinned: records signed today must verify in years), the pure
checks the workflow runs on a statement, the approval policy file's loader (a bad file is refused naming it), and
proofs checked by OpenSSH's ssh-keygen and by Ed25519 with keys made here."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from contract.approvals import (
    ApprovalProof,
    ApprovalStatement,
    TrustPolicy,
    canonical_statement,
    statement_digest,
    statement_problem,
)
from services.approvals import PolicyError, load_policy, reverify, sign_relay, sign_ssh, verify_proof
from services.config import ConfigError, worker_config_from_env
from tests.support.approval_keys import make_approval_keys

EXAMPLE = ApprovalStatement(
    workflow_id="deploy-00000000-0000-0000-0000-000000000001-web-rg",
    run_id="01a24b6c-b23a-7db7-94f6-efd993ef519d",
    round=1,
    plan_hash="sha256:d6476fa1" + "0" * 56,
    destructive_set=[
        "/subscriptions/00000000-0000-0000-0000-000000000001/resourcegroups/web-rg/providers/microsoft.web/sites/web-app"
    ],
    decision="approve",
    reason="web app retired",
    identity="bo@contoso.com",
    issued_at="2026-12-06T13:00:00Z",
    expires_at="2026-12-06T13:15:00Z",
)


def test_the_canonical_form_and_digest_are_the_documented_ones() -> None:
    text = canonical_statement(EXAMPLE).decode()
    assert text.startswith('{"decision":"approve","destructive_set":[')
    assert " " not in text.replace("web app retired", "")
    assert statement_digest(EXAMPLE) == "sha256:5f6df4bca063339579cc93a4c6fd06b2d3bffaf0abe9cdb8e0066011f130117a"
    assert text in (Path(__file__).parents[2] / "docs" / "SECURITY.md").read_text()  # the doc's example is this one
    assert statement_digest(EXAMPLE.model_copy(update={"reason": "web app retired."})) != statement_digest(EXAMPLE)


def _problem(**kw):
    args = {
        "workflow_id": EXAMPLE.workflow_id, "run_id": EXAMPLE.run_id, "round_number": 1,
        "plan_hash": EXAMPLE.plan_hash, "destructive_set": list(EXAMPLE.destructive_set), "decision": "approve",
        "now": datetime(2026, 12, 6, 13, 5, tzinfo=UTC), "lifetime_seconds": 900,
    } | kw  # fmt: skip
    found = statement_problem(EXAMPLE, **args)
    return found[0] if found else None


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        ({}, None),
        ({"run_id": "another"}, "other-run"),
        ({"workflow_id": "deploy-x"}, "other-run"),
        ({"round_number": 2}, "other-round"),
        ({"plan_hash": "sha256:" + "1" * 64}, "other-plan"),
        ({"destructive_set": []}, "other-plan"),
        ({"decision": "reject"}, "malformed"),
        ({"now": datetime(2026, 12, 6, 13, 15, tzinfo=UTC)}, "expired"),
        ({"now": datetime(2026, 12, 6, 12, 50, tzinfo=UTC)}, "expired"),  # issued 10 min in the future
        ({"lifetime_seconds": 600}, "expired"),  # the statement spans 15 min, the policy allows 10
    ],
)
def test_a_statement_must_be_for_this_run_round_and_plan_and_current(change, kind) -> None:
    assert _problem(**change) == kind


def test_the_policy_file_is_loaded_with_its_allowed_signers_and_a_bad_one_is_refused_naming_it(tmp_path) -> None:
    keys = make_approval_keys(tmp_path, initiator="root")
    assert keys.policy is not None
    policy = load_policy(keys.policy)
    assert "ana namespaces=" in policy.allowed_signers and policy.relays[0].key_id == "team-api-1"
    assert policy.accepted_proofs == ["ssh", "relay"] and policy.statement_lifetime_seconds == 900
    assert policy.digest() == load_policy(keys.policy).digest()

    bad = tmp_path / "bad.toml"
    for text, words in (
        ("accepted_proofs = [", "not valid TOML"),
        ('accepted_proofs = ["ssh", "magic"]', "magic"),
        ('accepted_proofs = ["ssh"]', "names no allowed_signers"),
        ('accepted_proofs = ["ssh"]\nallowed_signers = "nowhere"', "cannot read the allowed_signers"),
        ("accepted_proofs = []", "empty"),
        ('accepted_proofs = ["relay"]\n[[relay]]\nkey_id = "x"\npublic_key = "not-base64!"', "Ed25519"),
        ("statement_lifetime_seconds = 1", "statement_lifetime_seconds"),
    ):
        bad.write_text(text)
        with pytest.raises(PolicyError) as caught:
            load_policy(bad)
        assert str(bad) in str(caught.value) and words in str(caught.value), (text, caught.value)
    with pytest.raises(ConfigError, match="not a regular file"):
        worker_config_from_env({"ORCHESTRATOR_APPROVAL_POLICY": str(tmp_path)})
    config = worker_config_from_env({"ORCHESTRATOR_APPROVAL_POLICY": str(keys.policy)})
    assert config.approval_policy_path == keys.policy and config.settings.approval.trust is not None


def test_ssh_and_relay_proofs_verify_only_over_the_exact_statement_and_keys_of_the_policy(tmp_path) -> None:
    keys = make_approval_keys(tmp_path, initiator="root")
    policy = load_policy(keys.policy)  # type: ignore[arg-type]
    statement = EXAMPLE.model_copy(update={"identity": "ana"})
    proof = ApprovalProof(kind="ssh", signature=sign_ssh(statement, key=str(keys.keys["ana"])))
    good = verify_proof(statement, proof, policy=policy)
    assert good.verified and good.key_fingerprint and good.key_fingerprint.startswith("SHA256:")
    assert good.signer_entry and good.signer_entry.startswith("ana ") and good.policy_digest == policy.digest()
    assert reverify(statement, proof, good, policy) is None

    tampered = statement.model_copy(update={"reason": "something else"})
    assert verify_proof(tampered, proof, policy=policy).failure == "bad-signature"
    as_bo = statement.model_copy(update={"identity": "bo"})
    bo_proof = ApprovalProof(kind="ssh", signature=sign_ssh(as_bo, key=str(keys.keys["ana"])))
    assert verify_proof(as_bo, bo_proof, policy=policy).failure == "unknown-signer"  # ana's key is not bo's
    old = statement.model_copy(update={"identity": "old"})
    old_proof = ApprovalProof(kind="ssh", signature=sign_ssh(old, key=str(keys.keys["old"])))
    assert verify_proof(old, old_proof, policy=policy).failure == "signer-not-valid"
    # The same signature checked at a moment inside the window (offline re-verification uses the original time).
    assert verify_proof(old, old_proof, policy=policy, at=datetime(2019, 6, 1, tzinfo=UTC)).verified
    # Revoked: a policy without ana's line no longer verifies her, and the old record names the old policy.
    revoked = policy.model_copy(
        update={"allowed_signers": "\n".join(x for x in policy.allowed_signers.splitlines() if not x.startswith("ana"))}
    )
    assert verify_proof(statement, proof, policy=revoked).failure == "unknown-signer"
    assert reverify(statement, proof, good, revoked) is not None and reverify(statement, proof, good, policy) is None

    relay = sign_relay(statement, private_key=keys.relay_private, key_id="team-api-1")
    assert verify_proof(statement, relay, policy=policy).verified
    assert verify_proof(tampered, relay, policy=policy).failure == "bad-signature"
    rogue = sign_relay(statement, private_key=keys.rogue_relay_private, key_id="team-api-1")
    assert verify_proof(statement, rogue, policy=policy).failure == "bad-signature"
    unknown = sign_relay(statement, private_key=keys.rogue_relay_private, key_id="rogue")
    assert verify_proof(statement, unknown, policy=policy).failure == "untrusted-relay"
    ssh_only = TrustPolicy(accepted_proofs=["ssh"], allowed_signers=policy.allowed_signers)
    assert verify_proof(statement, relay, policy=ssh_only).failure == "proof-kind-refused"


def test_the_policy_rules_scopes_n_of_m_initiator_and_skip() -> None:
    policy = TrustPolicy.model_validate(
        {"scopes": [
            {"resource_group": "prod-*", "approvers": ["ana", "bo"], "required_approvals": 2},
            {"approvers": ["*"], "skip_confirmation": ["ci-bot"]},
        ]}
    )  # fmt: skip
    kw = {"initiator": "cy", "approving": True, "subscription": "s"}
    assert policy.refusal(identity="ana", resource_group="PROD-web", **kw) is None
    assert "not an approver" in (policy.refusal(identity="dan", resource_group="prod-web", **kw) or "")
    assert policy.refusal(identity="dan", resource_group="dev", **kw) is None
    assert "started this deployment" in (policy.refusal(identity="cy", resource_group="dev", **kw) or "")
    assert policy.refusal(identity="cy", resource_group="dev", **(kw | {"approving": False})) is None
    assert policy.required_approvals("s", "prod-web") == 2 and policy.required_approvals("s", "dev") == 1
    assert policy.skip_refusal(initiator="ci-bot", subscription="s", resource_group="dev") is None
    assert policy.skip_refusal(initiator="ci-bot", subscription="s", resource_group="prod-1") is not None
    # no scope matches: nobody may approve (an operator lists scopes to allow)
    only_prod = TrustPolicy.model_validate({"scopes": [{"resource_group": "prod-*"}]})
    assert only_prod.refusal(identity="ana", resource_group="dev", **kw) is not None
