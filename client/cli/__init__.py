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

from client.exit_codes import ExitCode

# Every command: its module and its line in `starter.py --help`, in that order. Only the module of the command being
# run is imported (each pulls in what its work needs), so `--help` and a command's start stay fast; the line here is
# checked against the module's own help text by tests/cli/test_parser.py.
COMMANDS: dict[str, tuple[str, str]] = {
    "deploy": ("client.cli.deploy", "deploy an ARM template to a resource group through the deployment workflow"),
    "approve": ("client.cli.approvals", "approve the deletions a waiting deployment's plan makes, and let it deploy"),
    "reject": ("client.cli.approvals", "reject a waiting deployment's plan: the deployment fails (exit code 4)"),
    "rollback-params": (
        "client.cli.rollback_params",
        "give a waiting rollback the secure parameter values it could not recover",
    ),
    "status": (
        "client.cli.status",
        "show a deployment's stage, plan, pending confirmation and per-stage attempts",
    ),
    "list": (
        "client.cli.status",
        "list recent deployments (newest first), by resource group, git SHA, state and start time",
    ),
    "cancel": ("client.cli.lifecycle", "cancel a running deployment (and its ARM deployment, if one is running)"),
    "follow": (
        "client.cli.lifecycle",
        "re-attach to a deployment's progress (after Ctrl-C) and exit with its exit code",
    ),
    "audit": (
        "client.cli.audit",
        "rebuild a deployment's audit record from Temporal's history and write it (JSON and/or SQLite)",
    ),
    "verify-approvals": (
        "client.cli.verify_approvals",
        "re-verify a finished deployment's signed approvals offline, from its audit record alone",
    ),
    "dev": (
        "client.cli.dev",
        "run the embedded default (Temporal dev server with UI, local ARM, worker) until Ctrl-C",
    ),
    "demo": ("client.cli.dev", "deploy examples/storage-and-web for real on the embedded default, then stop it"),
    "expand": (
        "client.cli.expand",
        "expand an ARM template offline: parameters, resources, deployment order, outputs",
    ),
    "lint": ("client.cli.lint", "run the lint gate on a template (Bicep or ARM JSON) without deploying"),
    "rollout": (
        "client.cli.rollout",
        "roll a template out to many resource groups ring by ring: plan, start, status, pause, resume, abort, approve",
    ),
    "drift": (
        "client.cli.drift",
        "detect drift on a schedule: what-if of a resource group's last good deployment against the live state",
    ),
    "api": (
        "client.cli.api",
        "run the team service's HTTP API (start, follow, approve, cancel deployments) until Ctrl-C",
    ),
    "codec-server": (
        "client.cli.codec_server",
        "serve Temporal's codec protocol so the Web UI and CLI can read encrypted payloads",
    ),
}
COMMAND_MODULES: list[str] = list(dict.fromkeys(module for module, _ in COMMANDS.values()))
ALL = "*"


class UsageError(Exception):
    """A mistake in the command line or an input file: printed as one paragraph, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(ExitCode.USAGE)


def build_parser(command: str = ALL) -> argparse.ArgumentParser:
    """The whole parser, or (``command``) one whose other commands are only their name and help line."""
    from contract.version import package_version

    # `python starter.py` or the installed `bicep-orchestrator` command: usage and --version name what was typed.
    invoked = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    parser = _Parser(
        prog="bicep-orchestrator" if invoked == "bicep-orchestrator" else "starter.py",
        description="Bicep deployment orchestrator: durable, audited Azure deployments on Temporal.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    wanted = COMMANDS[command][0] if command in COMMANDS else None
    for name, (module_name, help_line) in COMMANDS.items():
        if name in sub.choices:
            continue  # added with another command of its module
        if command == ALL or module_name == wanted:
            importlib.import_module(module_name).add_parser(sub)
        else:
            sub.add_parser(name, help=help_line)
    # `starter.py local-arm` is dispatched before this parser (the embedded default's emulator has its own options);
    # listed here so the top-level --help names it.
    sub.add_parser(
        "local-arm",
        help="run the local ARM emulator (HTTPS on loopback; `starter.py local-arm --help` for its options)",
        add_help=False,
    )
    return parser


def _command_of(argv: list[str]) -> str | None:
    """The command an argument list runs: its first word that is not an option."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = _command_of(argv)
    parser = build_parser(command if command in COMMANDS else "")
    args = parser.parse_args(argv)
    from client.cli import colour

    colour.configure(args)
    try:
        return int(args.run(args))
    except UsageError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return ExitCode.USAGE
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
