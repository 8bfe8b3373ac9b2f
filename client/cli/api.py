"""``starter.py api``: run the team service's HTTP API (docs/API.md) until Ctrl-C or SIGTERM.

It connects to Temporal as the other commands do (``--local``: the embedded default; otherwise TEMPORAL_ADDRESS /
a temporal.toml profile), shares the content store with the workers (ORCHESTRATOR_BLOB_DIR), and signs in callers
with OpenID Connect bearer tokens — or, with ``--dev``, runs the local development mode: loopback only, everyone is
the configured identity, unverified. Exit codes: 0 stopped by Ctrl-C/SIGTERM, 2 bad options or configuration
(a non-loopback --bind with --dev, an unusable relay key, no sign-in configured), 3 Temporal unreachable or the
port taken.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from client.cli._common import CommandError, current_user, resolve_target, run_command
from client.exit_codes import ExitCode

DEFAULT_PORT = 8080
ENV_DEV_IDENTITY = "ORCHESTRATOR_API_DEV_IDENTITY"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "api",
        help="run the team service's HTTP API (start, follow, approve, cancel deployments) until Ctrl-C",
        description="Serve the HTTP API (docs/API.md) until Ctrl-C or SIGTERM. Exit codes: 0 stopped, 2 bad options "
        "or configuration, 3 Temporal unreachable or the port taken.",
    )
    p.add_argument("--bind", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port; 0 picks a free one (default: %(default)s)")
    p.add_argument(
        "--dev",
        action="store_true",
        help="local development mode: loopback only, no sign-in, every request is --dev-identity (unverified)",
    )
    p.add_argument(
        "--dev-identity",
        metavar="NAME",
        help=f"who the development mode says the caller is (default: ${ENV_DEV_IDENTITY}, else your OS account)",
    )
    p.add_argument(
        "--local",
        action="store_true",
        help="use the embedded default started by `starter.py dev` (its Temporal server and content store)",
    )
    p.add_argument("--state-dir", type=Path, help="the embedded default's state folder (default: ./.orchestrator)")
    p.add_argument(
        "--max-body-bytes",
        type=int,
        default=None,
        metavar="N",
        help="largest request body accepted, in bytes (default: 6 MiB); larger ones are refused with 413",
    )
    p.add_argument(
        "--output",
        "-o",
        choices=["text", "json"],
        default="text",
        help="how the address is announced on stdout once serving: a line of text, or one JSON object",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return run_command(lambda: serve_api(args), output="text")


async def serve_api(args: argparse.Namespace) -> int:
    from api.app import DEFAULT_MAX_BODY_BYTES, ApiSettings, create_app
    from api.browser import BrowserSessions
    from api.deployments import ENV_BICEP_ROOT, Deployments
    from api.devmode import DevAuthenticator, DevAuthorizer, DevModeError, check_loopback
    from api.identity import Authenticator, Authorizer
    from api.relay import RelayKeyError, relay_key_from_env
    from api.server import ServiceConfigError, bind_socket, production_auth, serve
    from client.cli._common import open_store
    from client.embedded import default_state_dir
    from services.metrics import metrics_app

    if not 0 <= args.port <= 65535:
        raise CommandError(f"--port {args.port} is not a TCP port (0 to 65535).", ExitCode.USAGE)
    max_body = DEFAULT_MAX_BODY_BYTES if args.max_body_bytes is None else args.max_body_bytes
    if max_body < 1024:
        raise CommandError(f"--max-body-bytes {max_body} is too small: give at least 1024.", ExitCode.USAGE)
    state_dir = args.state_dir or default_state_dir()
    authenticator: Authenticator
    authorizer: Authorizer
    browser: BrowserSessions | None = None
    try:
        if args.dev:
            check_loopback(args.bind)
            identity = args.dev_identity or os.environ.get(ENV_DEV_IDENTITY) or current_user()
            authenticator, authorizer = DevAuthenticator(identity), DevAuthorizer()
        else:
            auth = production_auth(os.environ)
            authenticator, authorizer, browser = auth.authenticator, auth.role_map, auth.browser
        relay = relay_key_from_env(os.environ, state_dir=state_dir if args.dev else None)
    except (DevModeError, ServiceConfigError, RelayKeyError) as exc:
        raise CommandError(f"{str(exc).rstrip('.')}. The service was not started.", ExitCode.USAGE) from None
    bicep_root = Path(os.environ[ENV_BICEP_ROOT]) if os.environ.get(ENV_BICEP_ROOT) else None
    if bicep_root is not None and not bicep_root.is_dir():
        raise CommandError(
            f"{ENV_BICEP_ROOT}={bicep_root} is not a folder. The service was not started.", ExitCode.USAGE
        )
    if args.local:
        args.state_dir = state_dir
    open_store(None)  # ORCHESTRATOR_CONTENT_STORE and its settings, checked before anything connects
    # Metrics are enabled before the Temporal client exists, so its runtime reports to the same /metrics.
    metrics = metrics_app()
    target = await resolve_target(args)
    deployments = Deployments(
        target.client,
        open_store(target),
        task_queue=target.task_queue,
        relay=relay,
        bicep_root=bicep_root,
    )
    settings = ApiSettings(max_body_bytes=max_body, loopback_only=args.dev)
    app = create_app(
        deployments,
        authenticator=authenticator,
        authorizer=authorizer,
        settings=settings,
        metrics_app=metrics,
        browser_sessions=browser,
    )
    try:
        sock = bind_socket(args.bind, args.port)
    except OSError as exc:
        raise CommandError(
            f"Cannot listen on {args.bind}:{args.port}: {exc.strerror or exc}. Choose another --port (0 picks a free "
            "one) or stop what holds it.",
            ExitCode.ENVIRONMENTAL,
        ) from None

    def ready(url: str) -> None:
        mode = (
            "development mode, loopback only, unverified identity"
            if args.dev
            else "OpenID Connect sign-in" + ("" if browser is not None else "; browser sign-in not configured")
        )
        if args.output == "json":
            line = {"url": url, "dev": bool(args.dev), "relay_key_id": relay.key_id,
                    "relay_public_key": relay.public_key_base64}  # fmt: skip
            sys.stdout.write(json.dumps(line) + "\n")
        else:
            sys.stdout.write(f"API serving on {url} ({mode}); routes: {url}/openapi.json; Ctrl-C stops it\n")
        sys.stdout.flush()

    await serve(app, sock, on_ready=ready)
    sys.stderr.write("API stopped.\n")
    return int(ExitCode.OK)
