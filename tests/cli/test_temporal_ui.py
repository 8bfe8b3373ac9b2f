"""The Temporal Web UI as an inspector sees it, in a real browser: headless Chromium (Debian's ``chromium``) driven by
Playwright for Python, against the embedded default's UI (the dev server's own, 2.5x).

- a deployment waiting for approval: its User Metadata shows the static summary, and its current details the
  plan's deletions (every resource id the workflow's status names) and the approve command;
- a rejected deployment: the page shows the rejection's message and no Python stack trace.

Screenshots go to the test's temporary folder; with ``ORCHESTRATOR_UI_SCREENSHOTS=DIR`` to DIR (how docs/ui-*.png
were made: ``ORCHESTRATOR_UI_SCREENSHOTS=docs .venv/bin/pytest tests/cli/test_temporal_ui.py``).

Skipped, saying why, when Chromium or Playwright is missing (``make test`` installs both: see the Makefile)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client.embedded import LOCAL_SUBSCRIPTION, EmbeddedDefault
from tests.support.cli_env import EXAMPLE, REPO
from tests.support.stderr_watch import StderrWatcher

CHROMIUM = os.environ.get("ORCHESTRATOR_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Everything a headless browser in a container without network needs, and nothing that phones home.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _why_no_browser() -> str | None:
    if not Path(CHROMIUM).is_file():
        return f"no Chromium at {CHROMIUM} (apt-get install -y chromium; `make test` does it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install playwright; `make test` does it)"
    return None


pytestmark = pytest.mark.skipif(_why_no_browser() is not None, reason=str(_why_no_browser()))

STARTER = str(REPO / "starter.py")
PARAMS = str(EXAMPLE / "azuredeploy.parameters.json")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDefault]:
    embedded = EmbeddedDefault(tmp_path_factory.mktemp("ui"))
    embedded.start()
    try:
        yield embedded
    finally:
        embedded.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("ORCHESTRATOR_UI_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _env(stack: EmbeddedDefault) -> dict[str, str]:
    return dict(os.environ, ORCHESTRATOR_STATE_DIR=str(stack.state_dir))


def _deploy(stack: EmbeddedDefault, rg: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, STARTER, "deploy", "--local", "-g", rg, "-l", "eastus", "-p", PARAMS, "--skip-health", *extra],
        cwd=REPO,
        env=_env(stack),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _waiting(stack: EmbeddedDefault, rg: str) -> tuple[subprocess.Popen[str], str]:
    """Deploy the example, then deploy it without the web app in Complete mode: that one waits for approval."""
    first = _deploy(stack, rg, "-t", str(EXAMPLE / "azuredeploy.json"))
    first.communicate(timeout=180)
    assert first.returncode == 0
    proc = _deploy(stack, rg, "--mode", "Complete", "-t", str(EXAMPLE / "azuredeploy.without-web.json"))
    StderrWatcher(proc).wait_for("[AWAITING_CONFIRMATION]", timeout=120)
    return proc, f"deploy-{LOCAL_SUBSCRIPTION}-{rg}"


def _cli(stack: EmbeddedDefault, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, STARTER, *argv], cwd=REPO, env=_env(stack), capture_output=True, text=True, timeout=120
    )


def _open(browser: Any, url: str) -> Any:
    page = browser.new_page(viewport={"width": 1152, "height": 800})
    page.goto(url, wait_until="load", timeout=60_000)
    return page


def _all_text(page: Any) -> str:
    """The text of the page and of its frames (the UI renders markdown metadata in sandboxed iframes)."""
    texts = []
    for frame in page.frames:
        try:
            texts.append(str(frame.inner_text("body", timeout=2_000)))
        except Exception:  # a frame that went away or has no body yet
            continue
    return "\n".join(texts)


def _text_when(page: Any, fragment: str, timeout: float = 30) -> str:
    """The page's text once ``fragment`` is in it (the UI renders after its API calls answer)."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = _all_text(page)
        if fragment in text:
            return text
        time.sleep(0.5)
    raise AssertionError(f"{fragment!r} never appeared on {page.url}:\n{text[:3000]}")


def test_waiting_deployment_shows_its_deletions_and_how_to_approve(
    stack: EmbeddedDefault, browser: Any, shots: Path
) -> None:
    assert stack.instance is not None
    proc, workflow_id = _waiting(stack, "ui-wait")
    try:
        status = json.loads(_cli(stack, "status", workflow_id, "--local", "--output", "json").stdout)
        deleted = [c["resource_id"] for c in status["pending_confirmation"]["destructive_changes"]]
        assert deleted, status

        page = _open(browser, f"{stack.instance.ui_url}/namespaces/default/workflows/{workflow_id}")
        _text_when(page, "User Metadata")
        page.get_by_text("User Metadata", exact=True).first.click()
        text = _text_when(page, "Waiting for approval")
        for resource_id in deleted:  # the plan's deletions, each one, readable in the page
            assert resource_id in text.replace("\n", ""), text
        assert "- Microsoft.Web/sites/" in text  # the plan in az notation
        assert f"python starter.py approve {workflow_id}" in text.replace("\n", "")
        # the static summary: resource group, template, initiator, git SHA
        assert "deploy azuredeploy.without-web.json to ui-wait (Complete) by" in text
        # the metadata panels at the top of the picture: what an approver reads
        page.get_by_text("Summary", exact=True).first.evaluate("e => e.scrollIntoView({block: 'start'})")
        page.screenshot(path=str(shots / "ui-waiting.png"))
        page.close()

        listing = _open(browser, f"{stack.instance.ui_url}/namespaces/default/workflows")
        _text_when(listing, workflow_id)
        listing.screenshot(path=str(shots / "ui-list.png"))
        listing.close()
    finally:
        _cli(stack, "reject", workflow_id, "--local", "--reason", "test over")
        proc.wait(timeout=60)


def test_rejected_deployment_reads_without_a_python_stack_trace(
    stack: EmbeddedDefault, browser: Any, shots: Path
) -> None:
    assert stack.instance is not None
    proc, workflow_id = _waiting(stack, "ui-reject")
    rejected = _cli(stack, "reject", workflow_id, "--local", "--reason", "not during business hours")
    assert rejected.returncode == 0, rejected.stderr
    assert proc.wait(timeout=60) == 4

    page = _open(browser, f"{stack.instance.ui_url}/namespaces/default/workflows/{workflow_id}")
    text = _text_when(page, "not during business hours")
    assert "FAILED" in text
    for trace in ("Traceback", 'File "', "stackTrace", "raise StageFailed"):
        assert trace not in text, text
    page.screenshot(path=str(shots / "ui-rejected.png"))
    page.get_by_text("User Metadata", exact=True).first.click()
    details = _text_when(page, "Failed at AWAITING_CONFIRMATION")
    assert "NOT_DEPLOYED Rejected: rejected by" in details
    page.close()
