"""The orchestrator's command-line entry point: ``python starter.py COMMAND ...`` (see README)."""

from __future__ import annotations

import contextlib
import os
import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "local-arm":
        # The embedded default's local ARM (a separate wing): its own parser and options.
        from client.embedded import run_local_arm

        return run_local_arm(argv[1:])
    from client.cli import main as cli_main

    return cli_main(argv)


def exit_now(code: int) -> None:
    """Flush and leave without interpreter teardown: the Temporal client's Rust threads can abort a finishing
    interpreter ("Fatal Python error: PyGILState_Release", SIGABRT, temporalio/sdk-python#300), which would turn a
    finished command's exit code into -6. Every command has stopped what it started by the time main returns."""
    if "services.telemetry" in sys.modules:  # spans still in the batch would be lost with the atexit handlers
        with contextlib.suppress(Exception):
            sys.modules["services.telemetry"].flush_tracing()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def console_main() -> None:
    """The ``bicep-orchestrator`` console command (pyproject.toml): the same as ``python starter.py``."""
    try:
        exit_code = main()
    except SystemExit as exc:  # argparse's usage errors, --help and --version
        exit_code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except BrokenPipeError:
        # The reader went away (`... | head`): what it wanted has been read. End quietly, as `cat` would under a
        # shell that ignores SIGPIPE, and without the traceback or the teardown abort an escaping exception causes.
        exit_code = 0
        _silence_stdio()
    exit_now(exit_code)


def _silence_stdio() -> None:
    """Point stdout and stderr at /dev/null so nothing more is written to a closed pipe (the final flush too)."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                os.dup2(devnull, stream.fileno())


if __name__ == "__main__":
    console_main()
