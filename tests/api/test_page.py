"""The approval page through the real stack (embedded default with a policy trusting the API's relay key, the API on
a loopback port): what an approver and the deployer see of a Complete-mode deletion, the CSRF-protected decision
forms, and an approval from the page that deploys. Visitors are identified by the test's fixed bearer tokens
(tests/support/api_env.py); browser sign-in is OpenID Connect's business, tested on its own."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.api_env import ApiStack, follow, waiting_deletion


def _form(page: str, decision: str) -> dict[str, str]:
    match = re.search(r'<form class="decide" method="post" action="([^"]+)">(.*?)</form>', _only(page, decision), re.S)
    assert match, f"no {decision} form on the page"
    fields = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', match.group(2)))
    return {"action": match.group(1), **fields}


def _only(page: str, decision: str) -> str:
    start = page.find(f'name="decision" value="{decision}"')
    assert start >= 0, f"no {decision} form on the page"
    return page[page.rfind("<form", 0, start) : page.find("</form>", start) + 7]


def test_the_page_shows_the_deletions_and_lets_only_allowed_people_decide(api_stack: ApiStack) -> None:
    deployment, waiting = waiting_deletion(api_stack, "api-page")
    deletions = waiting["plan"]["deletions"]
    with api_stack.http("approver") as http:
        overview = http.get("/ui")
        assert overview.status_code == 200 and f"/ui/deployments/{deployment}" in overview.text
        page = http.get(f"/ui/deployments/{deployment}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "form-action 'self'" in page.headers["content-security-policy"]
    text = page.text
    assert f"This plan deletes {len(deletions)} resource(s)" in text
    for resource_id in waiting["pending_confirmation"]["destructive_changes"]:
        assert resource_id["resource_id"] in text
    assert "Started by <b>ana@contoso.com</b>" in text
    assert '<span class="c-delete">' in text  # the plan, coloured as az colours it
    approve = _form(text, "approve")
    assert approve["plan_hash"] == waiting["plan"]["hash"]

    with api_stack.http("deployer") as http:  # ana started it: four eyes
        own = http.get(f"/ui/deployments/{deployment}").text
    assert "You cannot approve" in own and "started this deployment" in own
    assert 'value="approve"' not in own and 'value="reject"' in own
    with api_stack.http("reader") as http:
        read_only = http.get(f"/ui/deployments/{deployment}").text
    assert "approver role" in read_only and "<form" not in read_only
    with api_stack.http() as anonymous:
        assert anonymous.get(f"/ui/deployments/{deployment}").status_code == 401

    with api_stack.http("approver", follow_redirects=False) as http:
        # A forged form (no token of ours, or another site's origin) is refused, and nothing changes.
        forged = {**approve, "csrf_token": "0" * 64, "reason": "forged"}
        assert http.post(approve["action"], data=forged).status_code == 403
        foreign = http.post(approve["action"], data=approve, headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 403
        # ana's token is not bo's.
        with api_stack.http("deployer") as ana:
            ana_reject = _form(ana.get(f"/ui/deployments/{deployment}").text, "reject")
        assert http.post(ana_reject["action"], data={**ana_reject, "reason": "x"}).status_code == 403
        assert http.get(f"/deployments/{deployment}").json()["stage"] == "AWAITING_CONFIRMATION"
        decided = http.post(approve["action"], data={**approve, "reason": "retired, checked on the page"})
        assert decided.status_code == 303 and decided.headers["location"] == f"/ui/deployments/{deployment}"
    events = follow(api_stack, deployment)
    assert events[-1]["data"]["outcome"] == "SUCCEEDED"
    with api_stack.http("approver") as http:
        after = http.get(f"/ui/deployments/{deployment}").text
    assert "APPROVED by bo@contoso.com (verified)" in after and "retired, checked on the page" in after


def test_chromium_renders_the_page(api_stack: ApiStack, tmp_path: Path) -> None:
    """Debian's chromium, headless, renders the overview (the page needs no script, so a screenshot is the check
    that it renders: a non-empty PNG)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (`make test` installs it where apt-get can)")
    shot = tmp_path / "overview.png"
    # Chromium cannot send a bearer token from its command line: the reader's token is not needed for the sign-in
    # page, which is what an anonymous visitor sees.
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}", "--window-size=1200,700",
         f"{api_stack.url}/ui"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.stat().st_size > 5000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
