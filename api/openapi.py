"""The OpenAPI document of the API as checked into docs/openapi.json (a test fails when the two drift apart).

Regenerate after changing a route or a body: ``python -m api.openapi > docs/openapi.json``."""

from __future__ import annotations

import json
import sys
from typing import Any


def document() -> dict[str, Any]:
    from api.app import create_app
    from api.devmode import DevAuthenticator, DevAuthorizer

    app = create_app(None, authenticator=DevAuthenticator("openapi"), authorizer=DevAuthorizer())
    return app.openapi()


def text() -> str:
    return json.dumps(document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(text())
