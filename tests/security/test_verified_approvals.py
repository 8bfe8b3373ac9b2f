"""Verified approvals through the real path: the embedded default (real Temporal dev server, local ARM over HTTPS,
worker process) with an approval policy file (ORCHESTRATOR_APPROVAL_POLICY) that accepts SSH and relay proofs only,
real keys made with ssh-keygen, `starter.py` processes for deploy/approve/status/audit/verify-approvals, and the
Temporal CLI for what an attacker who can signal sends (forged, replayed, cross-run, expired, tampered statements).

Each refused decision must be recorded with its kind and leave the deployment waiting; an allowed key's signed
approval deploys; N of M counts distinct verified approvers; verify-approvals passes on the genuine record and
fails on one edited after the fact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from client.cli._common import current_user
from client.embedded import EmbeddedDefault, temporal_binary
from tests.support.approval_keys import (
    ApprovalKeys,
    make_approval_keys,
    relay_payload,
    ssh_payload,
    statement_for,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "storage-and-web"
SCRUBBED = (
    "ORCHESTRATOR_CODEC_KEYS", "ORCHESTRATOR_CODEC_KEY_FILE", "ORCHESTRATOR_ALLOW_SKIP_CONFIRMATION",
    "ORCHESTRATOR_APPROVERS", "ORCHESTRATOR_APPROVERS_FILE", "ORCHESTRATOR_FOUR_EYES", "SSH_AUTH_SOCK",
)  # fmt: skip
ME = current_user()


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> ApprovalKeys:
    # Two distinct approvers for the resource groups named rg-two-*: the N-of-M scope comes first.
    two = '[[scope]]\nresource_group = "rg-two-*"\napprovers = ["ana", "bo"]\nrequired_approvals = 2\n'
    return make_approval_keys(tmp_path_factory.mktemp("approval-keys"), initiator=ME, scopes=two)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, keys: ApprovalKeys) -> Iterator[EmbeddedDefault]:
    saved = {k: os.environ.pop(k, None) for k in SCRUBBED}
    embedded = EmbeddedDefault(
        tmp_path_factory.mktemp("verified-stack"),
        worker_env={"ORCHESTRATOR_APPROVAL_POLICY": str(keys.policy), "ORCHESTRATOR_CONFIRMATION_TIMEOUT": "600"},
    )
    try:
        embedded.start()
        yield embedded
    finally:
        embedded.stop()
        for k, v in saved.items():
            if v is not None:
                os.environ[k] = v


def env_for(stack: EmbeddedDefault, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    return env | {"ORCHESTRATOR_STATE_DIR": str(stack.state_dir)} | extra


def starter(stack: EmbeddedDefault, *argv: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "starter.py", *argv], cwd=ROOT, env=env_for(stack, **extra),
                          capture_output=True, text=True, timeout=180)  # fmt: skip


def deploy_args(rg: str, template: str, *more: str) -> list[str]:
    return ["deploy", "--local", "-g", rg, "-l", "westeurope", "-t", str(EXAMPLE / template),
            "-p", str(EXAMPLE / "azuredeploy.parameters.json"), *more]  # fmt: skip


def signal(stack: EmbeddedDefault, workflow_id: str, payload: str, name: str = "approve") -> None:
    inst = stack.instance
    assert inst is not None
    done = subprocess.run(
        [temporal_binary(), "workflow", "signal", "--address", inst.temporal_address, "--namespace", inst.namespace,
         "--workflow-id", workflow_id, "--name", name, "--input", payload],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def status(stack: EmbeddedDefault, workflow_id: str) -> dict:
    done = starter(stack, "status", workflow_id, "--local", "--output", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def refused_until(stack: EmbeddedDefault, workflow_id: str, n: int, seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        current = status(stack, workflow_id)
        if current.get("refused_total", 0) >= n:
            return current
        assert time.monotonic() < deadline, current.get("refused_decisions")
        time.sleep(0.3)


class Waiting:
    """A `deploy --mode Complete` process waiting for approval of the web site's removal."""

    def __init__(self, stack: EmbeddedDefault, rg: str, audit_dir: Path) -> None:
        first = starter(stack, *deploy_args(rg, "azuredeploy.json"))
        assert first.returncode == 0, first.stderr[-2000:]
        self.proc = subprocess.Popen(
            [sys.executable, "starter.py", *deploy_args(rg, "azuredeploy.without-web.json", "--mode", "Complete",
                                                        "--audit-dir", str(audit_dir))],
            cwd=ROOT, env=env_for(stack), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        reader = threading.Thread(target=lambda: self.lines.extend(iter(self.proc.stderr.readline, "")), daemon=True)  # type: ignore[union-attr]
        reader.start()
        deadline = time.monotonic() + 120
        while not any("python starter.py approve " in line for line in self.lines):
            assert self.proc.poll() is None, "".join(self.lines)[-2000:]
            assert time.monotonic() < deadline, "".join(self.lines)[-2000:]
            time.sleep(0.1)
        command = next(line for line in self.lines if "python starter.py approve " in line)
        self.workflow_id = command.split("python starter.py approve ", 1)[1].split()[0]
        assert "--key" in command  # the deploy process tells approvers to sign
        current = status(stack, self.workflow_id)
        self.run_id = current["run_id"]
        self.pending = current["pending_confirmation"]

    def statement(self, identity: str, **kw):
        fields = {"workflow_id": self.workflow_id, "run_id": self.run_id} | kw
        return statement_for(self.pending, identity=identity, **fields)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def test_every_forged_replayed_or_misbound_decision_is_refused_then_a_signed_approval_deploys(
    stack: EmbeddedDefault, keys: ApprovalKeys, tmp_path: Path
) -> None:
    audit_dir = tmp_path / "audit"
    waiting = Waiting(stack, f"rg-verified-{uuid.uuid4().hex[:8]}", audit_dir)
    try:
        wid, k = waiting.workflow_id, keys.keys
        attempts: list[tuple[str, str]] = [
            # unsigned (a claimed name) under a policy that accepts only proofs
            ("unverified", json.dumps({"approver": "ana", "reason": "ok", "plan_hash": waiting.pending["plan_hash"]})),
            # cy's key claiming to be ana (cy is not in allowed_signers)
            ("unknown-signer", ssh_payload(waiting.statement("ana"), k["cy"])),
            # a listed signer whose validity window ended
            ("signer-not-valid", ssh_payload(waiting.statement("old"), k["old"])),
            # ana's genuine signatures over statements for another run, round, plan
            ("other-run", ssh_payload(waiting.statement("ana", run_id=str(uuid.uuid4())), k["ana"])),
            ("other-round", ssh_payload(waiting.statement("ana", round=2), k["ana"])),
            ("other-plan", ssh_payload(waiting.statement("ana", plan_hash="sha256:" + "0" * 64), k["ana"])),
            # expired: issued 20 minutes ago for 10 minutes
            (
                "expired",
                ssh_payload(waiting.statement("ana", issued=datetime.now(UTC) - timedelta(minutes=20)), k["ana"]),
            ),
            # the initiator's own (genuine, listed) key
            ("policy", ssh_payload(waiting.statement(ME), k[ME])),
            # a relay the policy does not list
            ("untrusted-relay", relay_payload(waiting.statement("ana"), keys.rogue_relay_private, "rogue-relay")),
            # ana's genuine signature, the statement's reason edited afterwards
            ("bad-signature", ssh_payload(waiting.statement("ana"), k["ana"], reason="edited after signing")),
        ]
        for _, payload in attempts:
            signal(stack, wid, payload)
        current = refused_until(stack, wid, len(attempts))
        assert current["stage"] == "AWAITING_CONFIRMATION" and current["confirmations"] == []
        kinds = [r["kind"] for r in current["refused_decisions"]]
        # (signed ones are refused once their proof is checked, so the order may differ from the sending order)
        assert sorted(kinds) == sorted(kind for kind, _ in attempts), current["refused_decisions"]
        # status (text) lists each refusal with its kind
        text = starter(stack, "status", wid, "--local").stdout
        assert "[unknown-signer]" in text and "[signer-not-valid]" in text and "[untrusted-relay]" in text

        # An unsigned `approve` from our CLI (no key, no agent) is refused before anything is sent.
        unsigned = starter(stack, "approve", wid, "--local", "--as", "ana", LOGNAME="ana", USER="ana")
        assert unsigned.returncode == 2 and "no SSH key was given" in unsigned.stderr, unsigned.stderr

        # bo approves with his key through the CLI: shown the plan hash and deletions, signed, verified, deployed.
        approve = starter(stack, "approve", wid, "--local", "--as", "bo", "--key", str(k["bo"]), "--reason", "ok")
        assert approve.returncode == 0, approve.stdout + approve.stderr
        assert waiting.pending["plan_hash"] in approve.stderr and "/sites/" in approve.stderr.lower()
        assert waiting.proc.wait(timeout=180) == 0, "".join(waiting.lines)[-3000:]

        # (a replay within the run is refused in the N-of-M test: once decided, the run is closed to signals)
        final = status(stack, wid)
        evidence = final["confirmations"][0]["decisions"]
        assert [(e["identity"], e["verification"]["verified"]) for e in evidence] == [("bo", True)]
        shown = starter(stack, "status", wid, "--local").stdout
        assert "approve by bo: verified (ssh SHA256:" in shown, shown
    finally:
        waiting.close()

    # The audit record deploy wrote carries each decision's statement, proof, verification and trust root.
    record_path = next(audit_dir.glob("*.json"))
    record = json.loads(record_path.read_text())
    approval = record["approvals"][0]
    assert approval["identity_verified"] is True and approval["policy"]["allowed_signers"]
    assert approval["decisions"][0]["verification"]["policy_digest"].startswith("sha256:")
    assert {r["kind"] for r in record["refused_decisions"]} >= {"unknown-signer", "bad-signature", "expired"}

    ok = starter(stack, "verify-approvals", wid, "--audit-dir", str(audit_dir))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "1 of 1 decision(s) verified" in ok.stdout

    # Edited after the fact: the reason in the kept statement, then (separately) the approver.
    for path, edit in (("reason", "approved by the CAB"), ("identity", "ana")):
        forged = json.loads(record_path.read_text())
        forged["approvals"][0]["decisions"][0]["statement"][path] = edit
        forged_path = tmp_path / f"forged-{path}.json"
        forged_path.write_text(json.dumps(forged))
        bad = starter(stack, "verify-approvals", "--record", str(forged_path))
        assert bad.returncode == 1, bad.stdout + bad.stderr
        assert "FAIL" in bad.stdout and "Traceback" not in bad.stderr
    # A trust root the auditor does not know is refused too.
    pinned = starter(stack, "verify-approvals", "--record", str(record_path), "--policy-digest", "sha256:" + "1" * 64)
    assert pinned.returncode == 1 and "not one of the trusted digests" in pinned.stdout


def test_two_of_two_distinct_keys_and_a_replayed_statement_is_refused(
    stack: EmbeddedDefault, keys: ApprovalKeys, tmp_path: Path
) -> None:
    waiting = Waiting(stack, f"rg-two-{uuid.uuid4().hex[:8]}", tmp_path / "audit")
    try:
        wid, k = waiting.workflow_id, keys.keys
        ana = ssh_payload(waiting.statement("ana"), k["ana"])
        signal(stack, wid, ana)
        deadline = time.monotonic() + 60
        while status(stack, wid)["pending_confirmation"]["approved_by"] != ["ana"]:
            assert time.monotonic() < deadline
            time.sleep(0.3)
        signal(stack, wid, ana)  # the same statement again: a replay, not a second approver
        current = refused_until(stack, wid, 1)
        assert current["refused_decisions"][-1]["kind"] == "replay"
        assert current["stage"] == "AWAITING_CONFIRMATION"
        assert current["pending_confirmation"]["required_approvals"] == 2
        # ana signs a second, fresh statement: still one distinct approver
        signal(stack, wid, ssh_payload(waiting.statement("ana", reason="again"), k["ana"]))
        assert refused_until(stack, wid, 2)["refused_decisions"][-1]["kind"] == "duplicate"

        second = starter(stack, "approve", wid, "--local", "--as", "bo", "--key", str(k["bo"]), "--reason", "2nd")
        assert second.returncode == 0, second.stdout + second.stderr
        assert waiting.proc.wait(timeout=180) == 0, "".join(waiting.lines)[-3000:]
        done = status(stack, wid)
        record = done["confirmations"][0]
        assert record["by"] == "ana, bo" and record["identity_verified"] is True
        assert [e["identity"] for e in record["decisions"]] == ["ana", "bo"]
        # The Temporal UI's current details label each decision with its verification.
        inst = stack.instance
        assert inst is not None
        meta = subprocess.run(
            [temporal_binary(), "workflow", "query", "--address", inst.temporal_address, "--namespace", inst.namespace,
             "--workflow-id", wid, "--name", "__temporal_workflow_metadata", "--output", "json"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert meta.returncode == 0, meta.stderr
        assert "approve by ana, verified (ssh SHA256:" in meta.stdout and "approve by bo, verified" in meta.stdout
    finally:
        waiting.close()


def test_a_trusted_relay_attestation_approves_and_no_confirm_deletes_is_refused(
    stack: EmbeddedDefault, keys: ApprovalKeys, tmp_path: Path
) -> None:
    rg = f"rg-relay-{uuid.uuid4().hex[:8]}"
    waiting = Waiting(stack, rg, tmp_path / "audit")
    try:
        signal(stack, waiting.workflow_id, relay_payload(waiting.statement("ana"), keys.relay_private))
        assert waiting.proc.wait(timeout=180) == 0, "".join(waiting.lines)[-3000:]
        record = status(stack, waiting.workflow_id)["confirmations"][0]
        assert record["decisions"][0]["verification"]["proof_kind"] == "relay"
        assert record["decisions"][0]["verification"]["verified"] is True
    finally:
        waiting.close()
    skip = starter(stack, *deploy_args(rg, "azuredeploy.json", "--mode", "Complete", "--no-confirm-deletes"))
    assert skip.returncode == 2, skip.stdout + skip.stderr[-2000:]
    assert "--no-confirm-deletes is refused" in skip.stdout + skip.stderr
    assert "approval-policy.toml" in skip.stdout + skip.stderr


def test_a_signer_removed_from_allowed_signers_no_longer_verifies_even_for_a_run_that_waits(
    stack: EmbeddedDefault, keys: ApprovalKeys, tmp_path: Path
) -> None:
    signers = keys.folder / "allowed_signers"
    saved = signers.read_text()
    waiting = Waiting(stack, f"rg-revoke-{uuid.uuid4().hex[:8]}", tmp_path / "audit")
    try:
        wid, bo = waiting.workflow_id, str(keys.keys["bo"])
        # The operator revokes bo while the deployment waits (the worker re-reads its policy at each check).
        signers.write_text("".join(line + "\n" for line in saved.splitlines() if not line.startswith("bo ")))
        try:
            revoked = starter(stack, "approve", wid, "--local", "--as", "bo", "--key", bo, "--reason", "after revoke")
        finally:
            signers.write_text(saved)
        assert revoked.returncode == 2, revoked.stdout + revoked.stderr
        assert "not in allowed_signers" in revoked.stderr and "recorded as refused" in revoked.stderr
        refused = status(stack, wid)["refused_decisions"][-1]
        assert refused["kind"] == "unknown-signer"
        # the policy that refused it differs from the run's: the refusal keeps it, by digest and document
        assert (
            refused["verification"]["policy"] is not None
            and "bo " not in refused["verification"]["policy"]["allowed_signers"]
        )
        # Re-listed, bo's next signed approval verifies and deploys.
        again = starter(stack, "approve", wid, "--local", "--as", "bo", "--key", bo, "--reason", "re-listed")
        assert again.returncode == 0, again.stdout + again.stderr
        assert waiting.proc.wait(timeout=180) == 0, "".join(waiting.lines)[-3000:]
    finally:
        waiting.close()


def test_a_policy_requiring_a_signed_start_refuses_an_unsigned_or_unlisted_one_and_verifies_the_initiator(
    stack: EmbeddedDefault, keys: ApprovalKeys, tmp_path: Path
) -> None:
    assert keys.policy is not None
    saved = keys.policy.read_text()
    rg = f"rg-start-{uuid.uuid4().hex[:8]}"
    # The operator turns it on; the worker reads the policy again for each new deployment.
    keys.policy.write_text("require_signed_start = true\n" + saved)
    try:
        unsigned = starter(stack, *deploy_args(rg, "azuredeploy.json"))
        assert unsigned.returncode == 2, unsigned.stdout + unsigned.stderr[-2000:]
        assert "requires the initiator to sign the start" in unsigned.stdout + unsigned.stderr
        # cy's key claiming to be the initiator (the OS account): not listed under that name
        forged = starter(stack, *deploy_args(rg, "azuredeploy.json", "--key", str(keys.keys["cy"])))
        assert forged.returncode == 2, forged.stdout + forged.stderr[-2000:]
        assert "start statement did not verify" in forged.stdout + forged.stderr
        signed = starter(stack, *deploy_args(rg, "azuredeploy.json", "--key", str(keys.keys[ME])))
        assert signed.returncode == 0, signed.stdout + signed.stderr[-2000:]
        assert "Signing the start as" in signed.stderr
    finally:
        keys.policy.write_text(saved)
    workflow_id = f"deploy-{stack.instance.subscription_id}-{rg}".lower()  # type: ignore[union-attr]
    shown = status(stack, workflow_id)
    assert "initiator_verification" in shown, shown  # the query answered (a worker replayed the closed run)
    verification = shown["initiator_verification"]
    assert verification["verified"] is True and verification["identity"] == ME
    audit = starter(stack, "audit", workflow_id, "--local", "--output", "json", "--audit-dir", str(tmp_path / "a"))
    assert audit.returncode == 0, audit.stderr
    assert json.loads(audit.stdout)["initiator_verification"]["verified"] is True


def update(stack: EmbeddedDefault, workflow_id: str, payload: str, name: str = "approve"):
    """``temporal workflow update execute``: a caller who needs the answer."""
    inst = stack.instance
    assert inst is not None
    with tempfile.NamedTemporaryFile("w", suffix=".json") as file:  # a 600 KB input is too long for argv
        file.write(payload)
        file.flush()
        return subprocess.run(
            [temporal_binary(), "workflow", "update", "execute", "--address", inst.temporal_address, "--namespace",
             inst.namespace, "--workflow-id", workflow_id, "--name", name, "--input-file", file.name,
             "--output", "json"],
            capture_output=True, text=True, timeout=90,
        )  # fmt: skip


def test_updates_answer_the_caller_refusals_are_recorded_and_oversized_ones_never_reach_history(
    stack: EmbeddedDefault, keys: ApprovalKeys, tmp_path: Path
) -> None:
    waiting = Waiting(stack, f"rg-update-{uuid.uuid4().hex[:8]}", tmp_path / "audit")
    try:
        wid, k = waiting.workflow_id, keys.keys
        # A forged proof: the update fails with the reason, and the attempt is recorded like a signal's.
        forged = update(stack, wid, ssh_payload(waiting.statement("ana"), k["cy"]))
        assert forged.returncode != 0 and "unknown-signer decision refused" in forged.stdout + forged.stderr, (
            forged.stdout + forged.stderr
        )
        assert status(stack, wid)["refused_decisions"][-1]["kind"] == "unknown-signer"
        # An oversized decision is rejected by the validator: answered, and not written to history.
        big = update(stack, wid, json.dumps({"approver": "mallory", "reason": "x" * 600_000}))
        assert big.returncode != 0 and "oversized" in big.stdout + big.stderr
        inst = stack.instance
        assert inst is not None
        shown = subprocess.run(
            [temporal_binary(), "workflow", "show", "--address", inst.temporal_address, "--namespace",
             inst.namespace, "--workflow-id", wid, "--output", "json"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert shown.returncode == 0 and len(shown.stdout) < 400_000 and "mallory" not in shown.stdout
        assert status(stack, wid)["refused_total"] == 1
        # ana's genuine approval: the answer says taken, verified; the deployment completes.
        taken = update(stack, wid, ssh_payload(waiting.statement("ana"), k["ana"]))
        assert taken.returncode == 0, taken.stdout + taken.stderr
        answer = json.loads(taken.stdout)
        answer = answer.get("result", answer)
        assert answer["outcome"] == "taken" and answer["identity"] == "ana" and answer["identity_verified"] is True
        assert waiting.proc.wait(timeout=180) == 0, "".join(waiting.lines)[-3000:]
    finally:
        waiting.close()
