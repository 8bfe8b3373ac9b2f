"""Health declarations carry secrets — an Authorization header, a SAS `sig=` query — and a deployment that completed
healthy is kept as its resource group's last good one, checks included. With codec keys configured nothing of them
is in plaintext in the content store (the record keeps a redacted copy and the checks sealed), and a rollback opens
them again: its health checks send the header. The embedded default (dev server, local ARM over HTTPS, worker
process) with keys, driven by the CLI."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from client.embedded import EmbeddedDefault
from client.exit_codes import ExitCode
from tests.support.cli_env import health_deploy_argv as deploy_argv
from tests.support.cli_env import run_cli
from tests.support.health_servers import ServerThread


@pytest.fixture(scope="module")
def keyed_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDefault]:
    keys = f"k1={base64.b64encode(os.urandom(32)).decode()}"
    saved = os.environ.get("ORCHESTRATOR_CODEC_KEYS")
    os.environ["ORCHESTRATOR_CODEC_KEYS"] = keys  # the worker and codec server inherit it; so does the CLI here
    embedded = EmbeddedDefault(tmp_path_factory.mktemp("keyed-stack"))
    try:
        embedded.start()
        yield embedded
    finally:
        embedded.stop()
        if saved is None:
            os.environ.pop("ORCHESTRATOR_CODEC_KEYS", None)
        else:
            os.environ["ORCHESTRATOR_CODEC_KEYS"] = saved


def files_holding(root: Path, *secrets: str) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.relative_to(root)} holds {s[:8]}…" for s in secrets if s.encode() in data]
    return found


def test_the_last_good_record_keeps_no_declaration_secret_and_a_rollback_still_sends_them(
    keyed_stack: EmbeddedDefault,
    servers: ServerThread,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ORCHESTRATOR_STATE_DIR", str(keyed_stack.state_dir))
    bearer, sig, expected = "b3arer" + os.urandom(12).hex(), "s1g" + os.urandom(12).hex(), "ex" + os.urandom(6).hex()
    web = servers.http()
    healthy = run_cli(
        deploy_argv(
            "rg-health-secrets",
            "--health-check", f"http:GET 'http://127.0.0.1:{web}/health?sv=2024&sig={sig}' name=web "
                              f"'header=Authorization: Bearer {bearer}' 'header=X-Expect: {expected}'",
        ),
        capsys,
    )  # fmt: skip
    assert healthy.code == ExitCode.OK, healthy.err
    assert sum(bearer.encode() in r for r in servers.requests) == 1
    store = keyed_stack.state_dir / "blobs"
    assert (store / "last-good").is_dir(), "the healthy deployment was not recorded"
    assert files_holding(store, bearer, sig, expected) == []
    assert bearer not in healthy.err + healthy.out and sig not in healthy.err + healthy.out

    dead = servers.reserve_port().getsockname()[1]
    failing = run_cli(
        deploy_argv(
            "rg-health-secrets",
            "--health-check", f"tcp:127.0.0.1:{dead} name=db", "--health-window", "1s", "--rollback-on-failure",
        ),
        capsys,
    )  # fmt: skip
    assert failing.code == ExitCode.ROLLED_BACK, failing.err
    # The rollback ran the last good deployment's own checks, opened from the sealed record: header and query sent.
    sent = [r for r in servers.requests if bearer.encode() in r]
    assert len(sent) == 2 and sig.encode() in sent[1] and expected.encode() in sent[1]
    assert files_holding(store, bearer, sig, expected) == []
