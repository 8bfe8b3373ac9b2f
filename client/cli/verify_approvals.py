"""``starter.py verify-approvals ID``: check every decision of a finished deployment again, offline, from its audit
record alone (the JSON file ``deploy`` and ``audit`` write; ``--record FILE`` names one directly).

For each decision the record counted under an approval policy, the statement's digest must be the one verified, the
policy document kept in the record must have the digest the decision names (``--policy-digest`` pins the digest an
auditor trusts, e.g. from the operator's change log), and the proof must verify again against that policy's
allowed_signers (``ssh-keygen -Y verify``, validity windows as at the moment of the original check) or relay keys.
Exit 0 when every decision verifies; 1 when any does not, or an approval carries no proof (a claimed name); 2 for a
record that cannot be read. No Temporal server is contacted.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from client.cli._common import CommandError, print_json, progress
from client.exit_codes import ExitCode
from contract.approvals import ApprovalProof, ApprovalStatement, TrustPolicy, VerificationResult
from services.approvals import reverify
from services.audit.store import default_audit_dir


def add_parser(subparsers: Any) -> None:
    help_text = "re-verify a finished deployment's signed approvals offline, from its audit record alone"
    p = subparsers.add_parser(
        "verify-approvals", help=help_text, description=help_text[0].upper() + help_text[1:] + "."
    )
    p.add_argument("workflow_id", metavar="ID", nargs="?", help="the deployment's workflow id (finds its record)")
    p.add_argument("--record", metavar="FILE", help="the audit record (JSON) to check, instead of finding it by ID")
    p.add_argument("--run-id", default=None, help="which run's record, when the audit dir holds several")
    p.add_argument(
        "--audit-dir", default=None, help="where the records are (default: ORCHESTRATOR_AUDIT_DIR or ./audit)"
    )
    p.add_argument(
        "--policy-digest",
        action="append",
        default=[],
        metavar="sha256:…",
        help="accept only approval policies with this digest (repeatable): the trust roots the auditor knows",
    )
    p.add_argument("--output", choices=("text", "json"), default="text", help="text (default) or json")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        return verify(args)
    except CommandError as exc:
        progress(str(exc))
        return int(exc.code)


def _record_path(args: argparse.Namespace) -> Path:
    if args.record:
        return Path(args.record)
    if not args.workflow_id:
        raise CommandError("Give the deployment's ID or --record FILE (its audit record).", ExitCode.USAGE)
    folder = Path(args.audit_dir) if args.audit_dir else default_audit_dir()
    from services.audit.store import json_path

    if args.run_id:
        return json_path(folder, args.workflow_id, args.run_id)
    prefix = json_path(folder, args.workflow_id, "RUN").name.rsplit("RUN", 1)[0]
    found = sorted(folder.glob(f"{prefix}*.json"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
    if not found:
        raise CommandError(
            f"No audit record of '{args.workflow_id}' in {folder}. Write it with `python starter.py audit "
            f"{args.workflow_id}` (add --local for the embedded default), or give --record FILE.",
            ExitCode.USAGE,
        )
    if len(found) > 1:
        runs = ", ".join(p.name for p in found)
        raise CommandError(
            f"{folder} holds several runs of '{args.workflow_id}' ({runs}): give --run-id.", ExitCode.USAGE
        )
    return found[0]


def verify(args: argparse.Namespace) -> int:
    path = _record_path(args)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CommandError(
            f"Cannot read the audit record {path}: {exc}. Give a JSON audit record.", ExitCode.USAGE
        ) from None
    if not isinstance(record, dict) or not isinstance(record.get("approvals"), list):
        raise CommandError(f"{path} is not an audit record (no approvals list).", ExitCode.USAGE)
    pinned = set(args.policy_digest)
    results: list[dict[str, Any]] = []
    for approval in record["approvals"]:
        if not isinstance(approval, dict) or approval.get("decision") not in ("APPROVED", "REJECTED"):
            continue
        decisions = approval.get("decisions") or []
        if not decisions:
            results.append(
                {
                    "round": approval.get("round"),
                    "identity": approval.get("by"),
                    "decision": approval.get("decision"),
                    "ok": False,
                    "why": "no proof: the identity was claimed, not verified",
                }
            )
            continue
        for evidence in decisions:
            results.append(_check(evidence, approval, pinned, record))
    failures = [r for r in results if not r["ok"]]
    if args.output == "json":
        print_json({"record": str(path), "verified": not failures and bool(results), "decisions": results})
    else:
        for r in results:
            mark = "ok  " if r["ok"] else "FAIL"
            print(f"{mark} round {r['round']} {r['decision']} by {r['identity']}: {r.get('why') or r.get('how')}")
        if not results:
            print(f"{path}: no approval or rejection to verify")
        print(f"{len(results) - len(failures)} of {len(results)} decision(s) verified ({path})")
    return int(ExitCode.OK if results and not failures else ExitCode.LOGIC_FAILURE)


def _check(evidence: Any, approval: dict[str, Any], pinned: set[str], record: dict[str, Any]) -> dict[str, Any]:
    base = {"round": approval.get("round"), "identity": None, "decision": None, "ok": False}
    try:
        statement = ApprovalStatement.model_validate(evidence["statement"])
        proof = ApprovalProof.model_validate(evidence["proof"])
        recorded = VerificationResult.model_validate(evidence["verification"])
        document = recorded.policy.model_dump(mode="json") if recorded.policy else approval.get("policy")
        policy = TrustPolicy.model_validate(document)
    except (KeyError, TypeError, ValidationError):
        identity = evidence.get("identity") if isinstance(evidence, dict) else None
        return base | {"identity": identity, "why": "no statement, proof or policy to verify (unverified or damaged)"}
    base |= {
        "identity": recorded.identity,
        "decision": statement.decision,
        "statement_digest": recorded.statement_digest,
    }
    if pinned and policy.digest() not in pinned:
        return base | {"why": f"policy {policy.digest()} is not one of the trusted digests given"}
    if not recorded.verified:
        return base | {"why": f"it was not verified when decided: {recorded.why}"}
    bound = (statement.workflow_id, statement.run_id, statement.round, statement.plan_hash)
    if bound != (record.get("deployment_id"), record.get("run_id"), approval.get("round"), approval.get("plan_hash")):
        return base | {"why": "the statement is for another deployment, run, round or plan than the record's decision"}
    if evidence.get("identity") != recorded.identity or statement.identity != recorded.identity:
        return base | {"why": "the record's identity differs from the statement's"}
    why = reverify(statement, proof, recorded, policy)
    if why is not None:
        return base | {"why": why}
    how = f"{proof.kind} {recorded.key_fingerprint or ''} under policy {policy.digest()}".replace("  ", " ")
    return base | {"ok": True, "how": how, "policy_digest": policy.digest()}
