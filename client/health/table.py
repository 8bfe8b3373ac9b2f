"""The health checks as a plain-text table, for the CLI's live view (redraw it from the progress callback)."""

from __future__ import annotations

from contract.health import CheckResult, CheckState, HealthCheckReport

_MARK = {CheckState.PENDING: "…", CheckState.PASSED: "✓", CheckState.FAILED: "✗"}


def format_health_table(report: HealthCheckReport, *, width: int = 120) -> str:
    """One line per check: mark, name, state, attempts, and the target or (while not passed) the last error."""
    header = ("", "CHECK", "STATE", "TRIES", "DETAIL")
    rows = [header, *(_row(c) for c in report.checks)]
    name_w = min(max(len(r[1]) for r in rows), 40)
    lines = []
    for mark, name, state, tries, detail in rows:
        line = f"{mark:1} {_fit(name, name_w):<{name_w}}  {state:<7}  {tries:>5}  {detail}"
        lines.append(_fit(line, width))
    passed = sum(c.state is CheckState.PASSED for c in report.checks)
    window = f"{report.elapsed_seconds:.1f} s of the {report.window_seconds:g} s window"
    lines.append(f"{passed}/{len(report.checks)} passed, {window}")
    return "\n".join(lines)


def _row(check: CheckResult) -> tuple[str, str, str, str, str]:
    detail = check.target
    if check.state is not CheckState.PASSED and check.last_error:
        detail = check.last_error
    elif check.note:
        detail = f"{check.target} ({check.note})"
    return _MARK[check.state], check.name, check.state.value, str(check.attempts), detail


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
