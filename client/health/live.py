"""The live table of health checks for a CLI following a deployment.

The health check activity heartbeats a ``HealthProgress``; Temporal keeps the latest heartbeat of a running
activity in the workflow's description, so a client reads it with ``describe()`` — no query, no workflow change.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from temporalio.converter import DataConverter

from client.health.table import format_health_table
from contract.health import HEALTH_CHECK_ACTIVITY, HealthCheckReport, HealthProgress

VERIFY_HEALTH_ACTIVITY = "verify_health"  # the resource-state wait's activity (contract.models.ActivityName)


async def live_health_progress(
    handle: Any, data_converter: DataConverter, *, activity_name: str = HEALTH_CHECK_ACTIVITY
) -> HealthProgress | None:
    """The latest heartbeat of the running health check activity of ``handle``'s workflow, or None when it is not
    running (or has not heartbeated yet)."""
    description = await handle.describe()
    for pending in description.raw_description.pending_activities:
        if pending.activity_type.name == activity_name and pending.heartbeat_details.payloads:
            [details] = await data_converter.decode(pending.heartbeat_details.payloads, [HealthProgress])
            return details if isinstance(details, HealthProgress) else HealthProgress.model_validate(details)
    return None


async def live_resource_wait(handle: Any, data_converter: DataConverter) -> dict[str, str] | None:
    """What VERIFYING_HEALTH's resource-state wait is waiting for (resource id -> state), from its heartbeat; None
    when that activity is not running."""
    description = await handle.describe()
    for pending in description.raw_description.pending_activities:
        if pending.activity_type.name == VERIFY_HEALTH_ACTIVITY and pending.heartbeat_details.payloads:
            details = await data_converter.decode(pending.heartbeat_details.payloads)
            for item in details:
                if isinstance(item, dict):
                    return {str(k): str(v) for k, v in item.items()}
            return {}
    return None


def resource_wait_line(waiting: dict[str, str]) -> str:
    """One line saying what the resource-state wait waits for (the first few resources)."""
    shown = "; ".join(f"{rid.rsplit('/providers/', 1)[-1]}: {state}" for rid, state in list(waiting.items())[:3])
    more = f" (and {len(waiting) - 3} more)" if len(waiting) > 3 else ""
    return f"  [VERIFYING_HEALTH] waiting for {len(waiting)} resource(s): {shown}{more}"


class LiveHealthTable:
    """Draws the table on a stream (stderr) whenever it changed: in place on a terminal, appended otherwise."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._last = ""
        self._last_change: object = None
        self._lines = 0

    def show(self, progress: HealthProgress | None) -> bool:
        """Draw ``progress`` if it differs from what is shown; True when something was drawn."""
        return progress is not None and self.show_report(progress.report)

    def show_report(self, report: HealthCheckReport | None, *, final: bool = False) -> bool:
        """Draw a report (the final one, from the deployment's result) if it differs from what is shown.
        Heartbeats reach the server only every few seconds, so the last live frame is rarely the final state."""
        if report is None:
            return False
        table = format_health_table(report)
        if table == self._last:
            return False
        tty = self._stream.isatty()
        # Appended (not a terminal: a CI log), a new copy is only worth it when a check changed state or error; the
        # elapsed time and the try count move on every heartbeat, and would print the table every few seconds.
        change = [(c.name, c.state, c.last_error, c.note) for c in report.checks]
        if not tty and not final and change == self._last_change:
            return False
        self._last_change = change
        if self._lines and tty:
            self._stream.write(f"\x1b[{self._lines}F\x1b[J")  # back to the table's first line, clear below
        self._stream.write(table + "\n")
        self._stream.flush()
        self._last, self._lines = table, table.count("\n") + 1
        return True
