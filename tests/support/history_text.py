"""Reading a workflow history as text a person (or an attacker with the database) would see: the events' JSON
plus every payload decoded from base64."""

from __future__ import annotations

import base64
import json
from typing import Any

from temporalio.client import WorkflowHistory


def payload_datas(node: Any) -> list[str]:
    out: list[str] = []
    if isinstance(node, dict):
        if isinstance(node.get("data"), str) and "metadata" in node:
            out.append(node["data"])
        for v in node.values():
            out += payload_datas(v)
    elif isinstance(node, list):
        for v in node:
            out += payload_datas(v)
    return out


def history_text(history: WorkflowHistory) -> str:
    doc = history.to_json_dict()
    decoded = [base64.b64decode(d).decode("utf-8", "replace") for d in payload_datas(doc)]
    return json.dumps(doc) + "\n" + "\n".join(decoded)


def payload_sizes(history: WorkflowHistory) -> list[int]:
    return [len(base64.b64decode(d)) for d in payload_datas(history.to_json_dict())]


def payload_bytes(show_output: bytes) -> bytes:
    """Every payload's ``data`` in a `temporal workflow show --output json` document, base64-decoded and joined:
    the JSON prints payload data as base64, so a byte search of the output alone could miss a value."""
    found: list[bytes] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "data" and isinstance(value, str):
                    try:
                        found.append(base64.b64decode(value, validate=True))
                    except ValueError:
                        found.append(value.encode())
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(json.loads(show_output))
    return b"\n".join(found)
