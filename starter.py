"""The orchestrator's command-line entry point: ``python starter.py COMMAND ...`` (see README)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "local-arm":
        # The local ARM emulator is a separate wing; the orchestrator never imports it, the entry point may.
        from local_arm.cli import main as local_arm_main

        return local_arm_main(argv[1:])
    from orchestrator.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
