"""The README's quick start works as written: its command block, taken from the README (between
``<!-- quickstart -->`` and ``<!-- /quickstart -->``, never retyped here), runs in order in one bash shell in a fresh
clone of this repository, against the embedded default — ``make demo`` creating the clone's own ``.venv``,
``source .venv/bin/activate``, ``dev --detach`` on the Temporal CLI's default port, two deployments, an approval
through a plain ``temporal workflow signal``, ``list``, ``audit``, ``dev --stop``.

The clone is of the committed HEAD (what CI tests). It needs 127.0.0.1:7233 and :8233 free, as the README's plain
``temporal`` command does; when another program holds them the test is skipped, naming the port."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
START = "<!-- quickstart -->"
END = "<!-- /quickstart -->"


def quickstart_commands(readme: str) -> list[str]:
    """The commands of the README's quick-start block, in order."""
    start, end = readme.index(START), readme.index(END)
    block = readme[start + len(START) : end]
    lines = [line for line in block.strip().splitlines() if not line.startswith("```")]
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _taken(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_the_block_is_found_and_holds_the_steps() -> None:
    commands = quickstart_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    assert commands[0] == "make demo" and commands[1] == "source .venv/bin/activate"
    assert any(c.startswith("temporal workflow signal ") and "--address" not in c for c in commands)


@pytest.mark.timeout(1200)
def test_readme_quickstart_runs_as_written_in_a_fresh_clone(tmp_path: Path) -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout to clone")
    for port in (7233, 8233):
        if _taken(port):
            pytest.skip(f"127.0.0.1:{port} is in use by another program; the README's plain `temporal` needs it")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    commands = quickstart_commands((clone / "README.md").read_text(encoding="utf-8"))
    script = clone / ".quickstart.sh"
    script.write_text("set -e\nset -x\n" + "\n".join(commands) + "\n", encoding="utf-8")
    # A user's shell: no venv of ours active, no state or keys of this test run leaking in.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "TEMPORAL_ADDRESS", "NO_COLOR", "FORCE_COLOR")
        and not k.startswith("ORCHESTRATOR_")
    }
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    try:
        done = subprocess.run(["bash", str(script)], cwd=clone, env=env, capture_output=True, text=True, timeout=1100)
    finally:
        python = clone / ".venv" / "bin" / "python"
        if (clone / ".orchestrator" / "dev.json").exists() and python.exists():
            subprocess.run([str(python), "starter.py", "dev", "--stop"], cwd=clone, env=env, timeout=120)
    log = done.stdout[-6000:] + "\n--- stderr ---\n" + done.stderr[-6000:]
    assert done.returncode == 0, log
    assert "Traceback" not in done.stdout + done.stderr, log
    # make demo deployed; the first deploy created, the second deleted the web app after the signal approved it
    assert "Resource changes: 1 to delete, 3 no change." in done.stdout, log
    workflow_id = "deploy-00000000-0000-0000-0000-000000000001-web-rg"
    listed = [line for line in done.stdout.splitlines() if line.startswith(workflow_id)]
    assert len(listed) == 2 and all("SUCCEEDED" in line for line in listed), log
    assert re.search(r"- Delete\s+/subscriptions/.*/providers/Microsoft\.Web/sites/", done.stdout), log
    assert "Stopped the embedded default" in done.stdout, log
