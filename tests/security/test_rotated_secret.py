"""A rotated secret's old value never shows: what-if's ``before`` side comes from the live resource, so after a
securestring is rotated it holds the *old* value, which no current parameter matches.

Through the embedded default (real Temporal dev server, local ARM over HTTPS, worker process; no codec keys, so
history payloads are plaintext and searchable) driven by the CLI as a user runs it: deploy with token A, deploy
again with token B (the plan shows ``~ tags.pw``), then deploy in Complete mode a template without the resource
(the plan deletes it and lists its properties). Neither token occurs in any run's stdout or stderr, in
``temporal workflow show`` (payloads decoded), in the audit JSON or audit.db, or in the content store's what-if
documents.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from client.embedded import EmbeddedDefault, temporal_binary
from harness.secret_template import random_token, secret_template
from tests.support.history_text import payload_bytes

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDefault]:
    embedded = EmbeddedDefault(tmp_path_factory.mktemp("rotation-stack"))
    try:
        embedded.start()
        yield embedded
    finally:
        embedded.stop()


def test_old_and_new_secret_values_are_masked_on_both_sides_everywhere(stack: EmbeddedDefault, tmp_path: Path) -> None:
    import os

    instance = stack.instance
    assert instance is not None
    env = {**os.environ, "ORCHESTRATOR_STATE_DIR": str(stack.state_dir)}
    env.pop("ORCHESTRATOR_CODEC_KEYS", None)
    env.pop("ORCHESTRATOR_CODEC_KEY_FILE", None)
    account = "st" + uuid.uuid4().hex[:12]
    rg = f"rg-rotate-{uuid.uuid4().hex[:8]}"
    template = tmp_path / "main.json"
    template.write_text(json.dumps(secret_template(account)))
    emptied = tmp_path / "empty.json"
    emptied.write_text(json.dumps({**secret_template(account), "parameters": {}, "resources": [], "outputs": {}}))
    audit_dir = tmp_path / "audit"
    old, new = random_token(), random_token()

    def deploy(*args: str) -> subprocess.CompletedProcess[bytes]:
        argv = [sys.executable, "starter.py", "deploy", "--local", "-g", rg, "-l", "westeurope",
                "--audit-dir", str(audit_dir), "--audit-format", "both", *args]  # fmt: skip
        run = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, timeout=240)
        assert run.returncode == 0, run.stderr.decode()[-3000:]
        return run

    first = deploy("-t", str(template), "--param", f"adminPassword={old}")
    second = deploy("-t", str(template), "--param", f"adminPassword={new}")
    assert b"~ tags.pw" in second.stdout, second.stdout.decode()  # the rotation is in the plan...
    assert b'~ tags.pw: "*****" => "*****"' in second.stdout  # ...masked on both sides
    third = deploy("-t", str(emptied), "--mode", "Complete", "--no-confirm-deletes", "--output", "json")
    result = json.loads(third.stdout)
    assert result["change_counts"].get("Delete") == 1, result["change_counts"]
    # The deleted account's live tags — which held the new value — are listed masked; the plain tag stays.
    text = subprocess.run(
        [sys.executable, "starter.py", "status", result["workflow_id"], "--local", "--plan"],
        cwd=ROOT, env=env, capture_output=True, timeout=60,
    )  # fmt: skip
    assert text.returncode == 0, text.stderr.decode()[-2000:]
    assert b"nobody" in text.stdout and b"*****" in text.stdout, text.stdout.decode()

    tokens = {"the old value": old.encode(), "the new value": new.encode()}

    def clean(what: str, data: bytes) -> None:
        for name, token in tokens.items():
            assert token not in data, f"{name} of the rotated secret occurs in {what}"

    for name, run in (("first", first), ("second", second), ("third", third), ("status --plan", text)):
        clean(f"the {name} run's stdout", run.stdout)
        clean(f"the {name} run's stderr", run.stderr)

    temporal = temporal_binary()
    listed = subprocess.run(
        [temporal, "workflow", "list", "--address", instance.temporal_address, "--namespace", "default",
         "--query", f"ResourceGroup='{rg}'", "--output", "json"],
        capture_output=True, timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)
    assert len(runs) == 3, runs
    for run_info in runs:
        execution = run_info["execution"]
        show = subprocess.run(
            [temporal, "workflow", "show", "--address", instance.temporal_address, "--namespace", "default",
             "--workflow-id", execution["workflowId"], "--run-id", execution["runId"], "--output", "json"],
            capture_output=True, timeout=60,
        )  # fmt: skip
        assert show.returncode == 0, show.stderr
        assert b"Microsoft.Storage/storageAccounts" in payload_bytes(show.stdout)  # the plan is in history, in clear
        clean("temporal workflow show", show.stdout + payload_bytes(show.stdout))

    written = sorted(p for p in audit_dir.rglob("*") if p.is_file())
    assert {p.suffix for p in written} >= {".json", ".db"}, written
    for path in written:
        clean(f"the audit file {path.name}", path.read_bytes())
    with sqlite3.connect(audit_dir / "audit.db") as db:
        dump = "\n".join(db.iterdump()).encode()
    clean("audit.db's rows", dump)

    for path in (stack.state_dir / "blobs").rglob("*"):
        if path.is_file() and "secret-fed" not in path.parts:
            data = path.read_bytes()
            if b"whatIf" in data or b"changeType" in data:
                clean(f"the stored what-if {path.name}", data)
