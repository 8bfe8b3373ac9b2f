"""The command-line interface behind ``starter.py``.

Each subcommand lives in its own module of this package with two functions:
``add_parser(subparsers) -> None`` and ``run(args) -> int``. ``main`` builds the parser from the modules listed
in ``COMMAND_MODULES`` and maps user mistakes to exit codes, never to tracebacks.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from orchestrator.exit_codes import ExitCode

# Order is the order of `starter.py --help`.
COMMAND_MODULES: list[str] = [
    "orchestrator.cli.deploy",
    "orchestrator.cli.approvals",
    "orchestrator.cli.rollback_params",
    "orchestrator.cli.status",
    "orchestrator.cli.lifecycle",
    "orchestrator.cli.audit",
    "orchestrator.cli.dev",
    "orchestrator.cli.expand",
    "orchestrator.cli.lint",
    "orchestrator.cli.codec_server",
]


class UsageError(Exception):
    """A mistake in the command line or an input file: printed as one paragraph, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(ExitCode.USAGE)


def build_parser() -> argparse.ArgumentParser:
    from orchestrator.config import package_version

    # `python starter.py` or the installed `bicep-orchestrator` command: usage and --version name what was typed.
    invoked = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    parser = _Parser(
        prog="bicep-orchestrator" if invoked == "bicep-orchestrator" else "starter.py",
        description="Bicep deployment orchestrator: durable, audited Azure deployments on Temporal.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_parser(sub)
    # `starter.py local-arm` is dispatched before this parser (starter.py: the orchestrator never imports the
    # emulator); listed here so the top-level --help names it.
    sub.add_parser(
        "local-arm",
        help="run the local ARM emulator (HTTPS on loopback; `starter.py local-arm --help` for its options)",
        add_help=False,
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from orchestrator.cli import colour

    colour.configure(args)
    try:
        return int(args.run(args))
    except UsageError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return ExitCode.USAGE
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
