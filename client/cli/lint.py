"""``starter.py lint``: the deployment's lint gate on this machine, without a workflow (for editors and CI).

The same ``lint_template`` the LINTING stage runs: the Bicep CLI for ``.bicep``/``.bicepparam``, our static checks for
ARM JSON. Diagnostics are printed grouped by file as ``path(line,col) : Level CODE: message`` with the counts; the
exit code is the gate's: 0 open, 1 closed (errors, or warnings without ``--allow-warnings``), 2 unusable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from client.exit_codes import ExitCode
from services.lint import LintError, lint_template


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "lint",
        help="run the lint gate on a template (Bicep or ARM JSON) without deploying",
        description=(
            "Compile and lint a Bicep template with the Bicep CLI (bicep on PATH, else az bicep, else BICEP_PATH), "
            "or check an ARM JSON template, and print every diagnostic. Exit 0 when the gate is open, 1 when it is "
            "closed, 2 when the input cannot be read."
        ),
    )
    parser.add_argument("-t", "--template", help="the template: .bicep or ARM JSON (optional with a .bicepparam)")
    parser.add_argument("-p", "--parameters", help="a .bicepparam file (its `using` names the template) or .json")
    parser.add_argument("--allow-warnings", action="store_true", help="warnings do not close the gate")
    parser.add_argument("--output", "-o", choices=["text", "json"], default="text", help="text (default) or json")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.template and not args.parameters:
        sys.stderr.write("error: give -t/--template, or -p with a .bicepparam file whose `using` names the template\n")
        return int(ExitCode.USAGE)
    try:
        result = lint_template(args.template, parameters_path=args.parameters, allow_warnings=args.allow_warnings)
    except LintError as exc:
        if args.output == "json":
            sys.stdout.write(json.dumps({"error": {"code": exc.code, "message": str(exc)}}, indent=2) + "\n")
        else:
            sys.stderr.write(f"error: {exc}\n")
        # No compiler, or one that failed or hung: the input may be fine, the machine is not (exit 1, as deploy).
        usage = exc.code in ("InvalidInput", "UsingMismatch")
        return int(ExitCode.USAGE if usage else ExitCode.LOGIC_FAILURE)
    if args.output == "json":
        sys.stdout.write(result.without_template().model_dump_json(indent=2) + "\n")
    else:
        sys.stdout.write(result.render())
        what = f"Bicep {result.bicep_version}" if result.template_kind == "bicep" else "ARM JSON checks"
        verdict = "passed" if result.passed else "closed"
        sys.stderr.write(f"lint gate {verdict} ({what}): {result.gate_reason}\n")
    return int(ExitCode.OK if result.passed else ExitCode.LOGIC_FAILURE)
