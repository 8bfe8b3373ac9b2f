"""A metric threshold check: GET a JSON document, read one number from it, and pass while it stays at or under a
threshold — e.g. an error rate from a metrics endpoint as a rollout's health gate.

settings:
    url        the JSON endpoint (may hold {outputs.NAME} placeholders, substituted by the worker)
    field      a dotted path into the document, e.g. "metrics.error_rate"
    max        the highest value that passes
secret_env (optional, first entry): a worker environment variable whose value is sent as a bearer token.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any


class ThresholdExceeded(Exception):
    pass


def check(ctx: Any) -> str:
    """Runs in a worker thread (a plain function); raising fails the attempt, returning passes it with a note."""
    settings = ctx.settings
    url, field, limit = str(settings["url"]), str(settings["field"]), float(settings["max"])
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if ctx.secrets:
        request.add_header("Authorization", f"Bearer {next(iter(ctx.secrets.values()))}")
    with urllib.request.urlopen(request, timeout=ctx.timeout) as response:
        document = json.loads(response.read())
    value: Any = document
    for part in field.split("."):
        value = value[part]
    if float(value) > limit:
        raise ThresholdExceeded(f"{field} is {value}, above the threshold {limit:g}")
    return f"{field} = {value} (threshold {limit:g})"
