"""``python starter.py local-arm --port PORT --state-dir DIR [--config FILE]``.

Prints one JSON line ``{"endpoint", "ca_file", "state_dir"}`` on stdout, then serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from .config import LocalArmConfig
from .faults import FaultConfigError
from .server import LocalArmServer

# Same values as client/exit_codes.py (the local ARM is a separate wing and does not import it).
EXIT_OK = 0
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="starter.py local-arm",
        description="Run the local ARM: an HTTPS Azure Resource Manager on 127.0.0.1 for the real Azure SDK.",
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 picks a free one)")
    parser.add_argument("--state-dir", type=Path, default=Path(".local-arm"), help="SQLite state and TLS files")
    parser.add_argument("--config", type=Path, help="JSON config: retry_after, provisioning_seconds, faults, ...")
    parser.add_argument("--verbose", action="store_true", help="log every request on stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr)
    if not 0 <= args.port <= 65535:
        print(f"local-arm: --port {args.port} is not a TCP port; use 0..65535 (0 picks a free one)", file=sys.stderr)
        return EXIT_USAGE
    try:
        config = LocalArmConfig.from_file(args.config) if args.config else LocalArmConfig()
    except FaultConfigError as exc:
        print(f"local-arm: --config: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        args.state_dir.mkdir(parents=True, exist_ok=True)
        probe = args.state_dir / ".writable"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        print(
            f"local-arm: --state-dir {args.state_dir} is not a writable directory ({exc.strerror or exc}); "
            "pass a directory the server may create files in",
            file=sys.stderr,
        )
        return EXIT_USAGE
    server = LocalArmServer(args.state_dir, port=args.port, config=config)
    try:
        server.start()
    except OSError as exc:
        print(
            f"local-arm: cannot serve on 127.0.0.1:{args.port} with state dir {args.state_dir}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return EXIT_ENVIRONMENT
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(json.dumps(server.describe()), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return EXIT_OK
