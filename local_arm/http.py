"""The request/response values passed between the HTTP layer and the service."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .errors import ArmError, invalid_request_content


@dataclass
class Request:
    method: str
    path: str  # decoded path, no query
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes = b""

    def api_version(self) -> str | None:
        for key, value in self.query.items():
            if key.lower() == "api-version":
                return value
        return None

    def json(self, *, required: bool = True) -> Any:
        if not self.body.strip():
            if required:
                raise invalid_request_content("The request body is empty")
            return {}
        try:
            return json.loads(self.body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise invalid_request_content(f"{exc.__class__.__name__}: {exc}") from exc

    def json_object(self, *, required: bool = True) -> dict[str, Any]:
        value = self.json(required=required)
        if not isinstance(value, dict):
            raise invalid_request_content(f"Expected a JSON object, got {type(value).__name__}")
        return value


@dataclass
class Response:
    status: int
    body: Any = None  # dict/list → JSON; None → empty
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def error(cls, err: ArmError) -> Response:
        return cls(err.status, err.body(), dict(err.headers))


@dataclass
class RouteInfo:
    """What a request was about, for counters and fault matching."""

    operation: str = "Unknown"
    subscription: str = ""
    deployment: str = ""
