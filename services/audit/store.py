"""Where audit records go: one JSON file per deployment and/or the SQLite database ``audit.db``, in one folder.

Layout of ``--audit-dir`` (default ``./audit``)::

    audit/
      <workflow id>.<run id>.json   one record per deployment (a workflow id is reused by each deployment of a
                                    resource group, the run id tells them apart)
      audit.db                      SQLite: the tables below, one row set per deployment

Writing a record again (``starter.py audit ID`` after ``deploy`` wrote it) replaces that deployment's file and rows,
so the folder always holds the latest rebuild. The schema is documented in docs/AUDIT.md; ``record_json`` keeps
the whole record, so nothing is lost in the columns' flattening.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path
from typing import Any

from services.audit.record import AuditRecord

AUDIT_DIR_ENV = "ORCHESTRATOR_AUDIT_DIR"
DEFAULT_AUDIT_DIR = "audit"
DATABASE_NAME = "audit.db"
FORMATS = ("json", "sqlite", "both", "none")

SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
    deployment_id      TEXT NOT NULL,   -- the workflow id, deploy-{subscription}-{resource group}
    run_id             TEXT NOT NULL,   -- the workflow run: one deployment
    git_sha            TEXT,
    template_file      TEXT,
    parameters_file    TEXT,
    timestamp          TEXT NOT NULL,   -- ISO 8601 UTC, when it was requested
    success            INTEGER NOT NULL,
    result_message     TEXT NOT NULL,
    result_timestamp   TEXT,            -- when it ended (NULL while running)
    outcome            TEXT,            -- SUCCEEDED, LOGIC_FAILURE, ENVIRONMENTAL_FAILURE, REJECTED, ...
    state              TEXT,            -- the last stage reached
    workflow_status    TEXT NOT NULL,
    subscription_id    TEXT,
    resource_group     TEXT,
    location           TEXT,
    mode               TEXT,
    initiator          TEXT,
    deployment_name    TEXT,            -- the ARM deployment
    template_hash      TEXT,            -- sha256 of the template deployed (compiled, for Bicep)
    bicep_version      TEXT,
    worker_identity    TEXT,
    approvals          INTEGER NOT NULL, -- how many confirmation decisions (details in deployment_events)
    retries            INTEGER NOT NULL, -- how many failed attempts (details in deployment_events)
    record_json        TEXT NOT NULL,   -- the whole record, as in the JSON file
    PRIMARY KEY (deployment_id, run_id)
);
CREATE TABLE IF NOT EXISTS deployment_events (
    deployment_id      TEXT NOT NULL,
    run_id             TEXT NOT NULL,
    seq                INTEGER NOT NULL, -- order within the deployment
    history_event_id   INTEGER NOT NULL, -- the Temporal history event it comes from
    timestamp          TEXT NOT NULL,
    event_type         TEXT NOT NULL,
    message            TEXT NOT NULL,
    details            TEXT NOT NULL,   -- JSON object
    PRIMARY KEY (deployment_id, run_id, seq),
    FOREIGN KEY (deployment_id, run_id) REFERENCES deployments (deployment_id, run_id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS deployment_resources (
    deployment_id      TEXT NOT NULL,
    run_id             TEXT NOT NULL,
    resource_id        TEXT NOT NULL,
    resource_type      TEXT NOT NULL,
    health_status      TEXT NOT NULL,   -- Healthy, Unhealthy, NotChecked; Deleted for a resource the plan deleted
    detail             TEXT,
    availability       TEXT,
    change_type        TEXT,            -- the plan's change type (Create, Modify, Delete, NoChange, ...), if planned
    PRIMARY KEY (deployment_id, run_id, resource_id),
    FOREIGN KEY (deployment_id, run_id) REFERENCES deployments (deployment_id, run_id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS deployments_git_sha ON deployments (git_sha);
CREATE INDEX IF NOT EXISTS deployments_resource_group ON deployments (resource_group);
"""


def default_audit_dir() -> Path:
    return Path(os.environ.get(AUDIT_DIR_ENV) or DEFAULT_AUDIT_DIR)


def record_text(record: AuditRecord) -> str:
    """The JSON document, stable byte for byte for the same history (sorted keys)."""
    return json.dumps(record.document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


_UNSAFE = re.compile(r"[^A-Za-z0-9._()-]")


def json_path(audit_dir: Path, deployment_id: str, run_id: str) -> Path:
    return audit_dir / f"{_UNSAFE.sub('_', deployment_id)}.{_UNSAFE.sub('_', run_id)}.json"


def write_record(record: AuditRecord, audit_dir: Path, *, fmt: str = "both") -> list[Path]:
    """Write the record as ``fmt`` says (json, sqlite, both, none); returns what was written."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown audit format {fmt!r}: one of {', '.join(FORMATS)}")
    if fmt == "none":
        return []
    audit_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if fmt in ("json", "both"):
        path = json_path(audit_dir, record.deployment_id, record.run_id)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(record_text(record), encoding="utf-8")
        os.replace(tmp, path)
        written.append(path)
    if fmt in ("sqlite", "both"):
        database = audit_dir / DATABASE_NAME
        write_sqlite(record, database)
        written.append(database)
    return written


def connect_database(database: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(database, timeout=30)
    connection.execute("PRAGMA foreign_keys = ON")
    connection.executescript(SCHEMA)
    columns = {row[1] for row in connection.execute("PRAGMA table_info(deployment_resources)")}
    if "change_type" not in columns:  # a database written before deleted resources were listed
        connection.execute("ALTER TABLE deployment_resources ADD COLUMN change_type TEXT")
    return connection


def planned_changes(record: AuditRecord) -> dict[str, tuple[str, str]]:
    """The plan's change per resource id (lower-cased): (resource id as planned, change type)."""
    changes = (record.plan or {}).get("changes") or []
    out: dict[str, tuple[str, str]] = {}
    for change in changes:
        rid, kind = change.get("resource_id"), change.get("change_type")
        if isinstance(rid, str) and isinstance(kind, str):
            out[rid.lower()] = (rid, kind)
    return out


def deleted_resources(record: AuditRecord) -> list[str]:
    """Ids of the resources the deployment's plan deleted, in plan order."""
    return [rid for rid, kind in planned_changes(record).values() if kind == "Delete"]


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def write_sqlite(record: AuditRecord, database: Path) -> None:
    doc = record.document()
    result = doc["result"]
    with closing(connect_database(database)) as db, db:
        key = (record.deployment_id, record.run_id)
        db.execute("DELETE FROM deployment_events WHERE deployment_id = ? AND run_id = ?", key)
        db.execute("DELETE FROM deployment_resources WHERE deployment_id = ? AND run_id = ?", key)
        db.execute("DELETE FROM deployments WHERE deployment_id = ? AND run_id = ?", key)
        db.execute(
            "INSERT INTO deployments (deployment_id, run_id, git_sha, template_file, parameters_file, timestamp, "
            "success, result_message, result_timestamp, outcome, state, workflow_status, subscription_id, "
            "resource_group, location, mode, initiator, deployment_name, template_hash, bicep_version, "
            "worker_identity, approvals, retries, record_json) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.deployment_id,
                record.run_id,
                record.git_sha,
                record.template_file,
                record.parameters_file,
                doc["timestamp"],
                int(record.result.success),
                record.result.message,
                result["timestamp"],
                record.result.outcome,
                record.state,
                record.result.workflow_status,
                record.subscription_id,
                record.resource_group,
                record.location,
                record.mode,
                record.initiator,
                record.deployment_name,
                record.template_hash,
                record.bicep_version,
                record.worker_identity,
                len(record.approvals),
                len(record.retries),
                _json(doc),
            ),
        )
        db.executemany(
            "INSERT INTO deployment_events (deployment_id, run_id, seq, history_event_id, timestamp, event_type, "
            "message, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            _event_rows(record, doc["events"]),
        )
        planned = planned_changes(record)
        rows = [
            (
                record.deployment_id,
                record.run_id,
                r.resource_id,
                r.resource_type,
                r.health_status,
                r.detail,
                r.availability,
                planned.get(r.resource_id.lower(), (None, None))[1],
            )
            for r in record.resources
        ]
        listed = {r.resource_id.lower() for r in record.resources}
        # Deleted resources are no longer deployed, but an auditor looks for them here too.
        deleted_done = record.result.success
        rows += [
            (
                record.deployment_id,
                record.run_id,
                rid,
                _resource_type(rid),
                "Deleted" if deleted_done else "NotDeleted",
                None if deleted_done else "the deployment did not complete; the plan would have deleted it",
                None,
                "Delete",
            )
            for rid in deleted_resources(record)
            if rid.lower() not in listed
        ]
        db.executemany(
            "INSERT INTO deployment_resources (deployment_id, run_id, resource_id, resource_type, health_status, "
            "detail, availability, change_type) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def _resource_type(resource_id: str) -> str:
    """``Microsoft.Web/sites`` from ``.../providers/Microsoft.Web/sites/name`` (child types too)."""
    _, sep, rest = resource_id.rpartition("/providers/")
    if not sep:
        return ""
    parts = rest.split("/")
    return "/".join([parts[0], *parts[1::2]]) if len(parts) >= 3 else rest


def _event_rows(record: AuditRecord, events: Iterable[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            record.deployment_id,
            record.run_id,
            seq,
            e["history_event_id"],
            e["timestamp"],
            e["event_type"],
            e["message"],
            _json(e["details"]),
        )
        for seq, e in enumerate(events, start=1)
    ]


def read_sqlite_record(database: Path, deployment_id: str, run_id: str) -> AuditRecord | None:
    """The record as stored in ``audit.db`` (its ``record_json``), or None."""
    with closing(sqlite3.connect(database)) as db:
        row = db.execute(
            "SELECT record_json FROM deployments WHERE deployment_id = ? AND run_id = ?", (deployment_id, run_id)
        ).fetchone()
    return AuditRecord.model_validate_json(row[0]) if row else None
