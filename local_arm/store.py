"""SQLite persistence under the state dir: resource groups, resources, deployments, their operations and the
status of long-running operations. One connection guarded by one lock — every write is a short transaction, so
concurrent requests serialise here and nowhere else.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resource_groups (
    sub TEXT NOT NULL, key TEXT NOT NULL, record TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (sub, key));
CREATE TABLE IF NOT EXISTS resources (
    key TEXT PRIMARY KEY, sub TEXT NOT NULL, rg TEXT NOT NULL, record TEXT NOT NULL, created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS resources_rg ON resources (sub, rg);
CREATE TABLE IF NOT EXISTS deployments (
    sub TEXT NOT NULL, rg TEXT NOT NULL, key TEXT NOT NULL, state TEXT NOT NULL, record TEXT NOT NULL,
    created REAL NOT NULL, PRIMARY KEY (sub, rg, key));
CREATE TABLE IF NOT EXISTS deployment_operations (
    sub TEXT NOT NULL, rg TEXT NOT NULL, deployment TEXT NOT NULL, op_id TEXT NOT NULL, seq INTEGER NOT NULL,
    record TEXT NOT NULL, PRIMARY KEY (sub, rg, deployment, op_id));
CREATE TABLE IF NOT EXISTS async_operations (
    id TEXT PRIMARY KEY, record TEXT NOT NULL, created REAL NOT NULL);
"""

RUNNING_STATES = ("Accepted", "Running")


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- resource groups ---------------------------------------------------------------------------------------
    def get_group(self, sub: str, name: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT record FROM resource_groups WHERE sub=? AND key=?", (sub.lower(), name.lower()))
        return json.loads(rows[0][0]) if rows else None

    def put_group(self, sub: str, record: dict[str, Any]) -> bool:
        """Insert or replace; True when it was created."""
        with self.transaction() as db:
            key = (sub.lower(), record["name"].lower())
            existed = db.execute("SELECT 1 FROM resource_groups WHERE sub=? AND key=?", key).fetchone()
            db.execute(
                "INSERT OR REPLACE INTO resource_groups VALUES (?,?,?,?)", (*key, json.dumps(record), time.time())
            )
            return existed is None

    def list_groups(self, sub: str) -> list[dict[str, Any]]:
        rows = self._rows("SELECT record FROM resource_groups WHERE sub=? ORDER BY created", (sub.lower(),))
        return [json.loads(r[0]) for r in rows]

    def delete_group(self, sub: str, name: str) -> None:
        s, k = sub.lower(), name.lower()
        with self.transaction() as db:
            db.execute("DELETE FROM resource_groups WHERE sub=? AND key=?", (s, k))
            db.execute("DELETE FROM resources WHERE sub=? AND rg=?", (s, k))
            db.execute("DELETE FROM deployments WHERE sub=? AND rg=?", (s, k))
            db.execute("DELETE FROM deployment_operations WHERE sub=? AND rg=?", (s, k))

    # -- resources ---------------------------------------------------------------------------------------------
    def get_resource(self, resource_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT record FROM resources WHERE key=?", (resource_id.lower(),))
        return json.loads(rows[0][0]) if rows else None

    def put_resource(self, sub: str, rg: str, record: dict[str, Any]) -> None:
        with self.transaction() as db:
            key = record["id"].lower()
            row = db.execute("SELECT created FROM resources WHERE key=?", (key,)).fetchone()
            created = row[0] if row else time.time()
            db.execute(
                "INSERT OR REPLACE INTO resources VALUES (?,?,?,?,?)",
                (key, sub.lower(), rg.lower(), json.dumps(record), created),
            )

    def list_resources(self, sub: str, rg: str | None = None) -> list[dict[str, Any]]:
        if rg is None:
            rows = self._rows("SELECT record FROM resources WHERE sub=? ORDER BY created", (sub.lower(),))
        else:
            rows = self._rows(
                "SELECT record FROM resources WHERE sub=? AND rg=? ORDER BY created", (sub.lower(), rg.lower())
            )
        return [json.loads(r[0]) for r in rows]

    def delete_resource(self, resource_id: str) -> bool:
        """Delete the resource and everything under its id (children, extension resources)."""
        key = resource_id.lower()
        with self.transaction() as db:
            cur = db.execute("DELETE FROM resources WHERE key=? OR key LIKE ? ESCAPE '\\'", (key, _like_prefix(key)))
            return cur.rowcount > 0

    # -- deployments -------------------------------------------------------------------------------------------
    def get_deployment(self, sub: str, rg: str, name: str) -> dict[str, Any] | None:
        rows = self._rows(
            "SELECT record FROM deployments WHERE sub=? AND rg=? AND key=?", (sub.lower(), rg.lower(), name.lower())
        )
        return json.loads(rows[0][0]) if rows else None

    def put_deployment(self, sub: str, rg: str, record: dict[str, Any]) -> None:
        with self.transaction() as db:
            self._put_deployment(db, sub, rg, record)

    def _put_deployment(self, db: sqlite3.Connection, sub: str, rg: str, record: dict[str, Any]) -> None:
        key = (sub.lower(), rg.lower(), record["name"].lower())
        row = db.execute("SELECT created FROM deployments WHERE sub=? AND rg=? AND key=?", key).fetchone()
        created = row[0] if row else time.time()
        db.execute(
            "INSERT OR REPLACE INTO deployments VALUES (?,?,?,?,?,?)",
            (*key, record["state"], json.dumps(record), created),
        )

    def start_deployment(self, sub: str, rg: str, record: dict[str, Any]) -> dict[str, Any] | None:
        """Store a new run unless one of the same name is still running; return the running one if so."""
        with self.transaction() as db:
            key = (sub.lower(), rg.lower(), record["name"].lower())
            row = db.execute("SELECT state, record FROM deployments WHERE sub=? AND rg=? AND key=?", key).fetchone()
            if row and row[0] in RUNNING_STATES:
                return dict(json.loads(row[1]))
            self._put_deployment(db, sub, rg, record)
            db.execute("DELETE FROM deployment_operations WHERE sub=? AND rg=? AND deployment=?", key)
            return None

    def list_deployments(self, sub: str, rg: str) -> list[dict[str, Any]]:
        rows = self._rows(
            "SELECT record FROM deployments WHERE sub=? AND rg=? ORDER BY created", (sub.lower(), rg.lower())
        )
        return [json.loads(r[0]) for r in rows]

    def unfinished_deployments(self) -> list[dict[str, Any]]:
        rows = self._rows("SELECT record FROM deployments WHERE state IN (?, ?) ORDER BY created", RUNNING_STATES)
        return [json.loads(r[0]) for r in rows]

    def delete_deployment(self, sub: str, rg: str, name: str) -> None:
        key = (sub.lower(), rg.lower(), name.lower())
        with self.transaction() as db:
            db.execute("DELETE FROM deployments WHERE sub=? AND rg=? AND key=?", key)
            db.execute("DELETE FROM deployment_operations WHERE sub=? AND rg=? AND deployment=?", key)

    def put_operation(self, sub: str, rg: str, deployment: str, op_id: str, record: dict[str, Any]) -> None:
        with self.transaction() as db:
            key = (sub.lower(), rg.lower(), deployment.lower(), op_id)
            row = db.execute(
                "SELECT seq FROM deployment_operations WHERE sub=? AND rg=? AND deployment=? AND op_id=?", key
            ).fetchone()
            if row:
                seq = row[0]
            else:
                top = db.execute(
                    "SELECT MAX(seq) FROM deployment_operations WHERE sub=? AND rg=? AND deployment=?", key[:3]
                ).fetchone()
                seq = (top[0] or 0) + 1
            db.execute(
                "INSERT OR REPLACE INTO deployment_operations VALUES (?,?,?,?,?,?)", (*key, seq, json.dumps(record))
            )

    def list_operations(self, sub: str, rg: str, deployment: str) -> list[dict[str, Any]]:
        rows = self._rows(
            "SELECT record FROM deployment_operations WHERE sub=? AND rg=? AND deployment=? ORDER BY seq",
            (sub.lower(), rg.lower(), deployment.lower()),
        )
        return [json.loads(r[0]) for r in rows]

    # -- long-running operation monitors -----------------------------------------------------------------------
    def put_async(self, op_id: str, record: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO async_operations VALUES (?,?,?)", (op_id, json.dumps(record), time.time())
            )

    def get_async(self, op_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT record FROM async_operations WHERE id=?", (op_id,))
        return json.loads(rows[0][0]) if rows else None

    def wipe(self) -> None:
        with self.transaction() as db:
            for table in ("resource_groups", "resources", "deployments", "deployment_operations", "async_operations"):
                db.execute(f"DELETE FROM {table}")


def _like_prefix(key: str) -> str:
    escaped = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "/%"
