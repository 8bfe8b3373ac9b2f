"""--git-sha defaults to the commit holding the template; none outside a git repository."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from client.cli.deploy import detect_git_sha

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid", "PATH": "/usr/bin:/bin", "HOME": str(cwd)}  # fmt: skip
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_sha_of_the_templates_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "infra").mkdir(parents=True)
    template = repo / "infra" / "main.json"
    template.write_text("{}")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "template")
    assert detect_git_sha(template) == git(repo, "rev-parse", "HEAD")


def test_none_outside_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # even inside a checkout
    template = tmp_path / "main.json"
    template.write_text("{}")
    assert detect_git_sha(template) is None
