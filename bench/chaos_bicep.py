#!/usr/bin/env python3
"""CHAOS TEST DOUBLE for the Bicep CLI, used only by bench/chaos.py to make LINTING last long enough to kill a
worker in it. It is not a compiler: ``build X.bicep --stdout`` prints the ARM JSON the chaos suite wrote beside it
(``X.json``), ``lint`` prints an empty SARIF log; both first sleep ``CHAOS_BICEP_SECONDS`` (default 2). Each call
appends the calling worker's process id to ``X.linting``, so the suite knows LINTING is running and where (a query
cannot tell: the workflow task that runs the lint local activity is still open)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    if argv[:1] in (["--version"], ["-v"]):
        print("Bicep CLI version 0.46.1 (chaos-double)")
        return 0
    if len(argv) < 2 or argv[0] not in ("build", "lint"):
        print(f"bicep (chaos double): unsupported command {argv!r}", file=sys.stderr)
        return 1
    source = Path(argv[1])
    with open(source.with_suffix(".linting"), "a", encoding="utf-8") as marker:
        marker.write(f"{os.getppid()}\n")
    time.sleep(float(os.environ.get("CHAOS_BICEP_SECONDS", "2")))
    if argv[0] == "lint":
        print(json.dumps({"version": "2.1.0", "runs": [{"results": []}]}))
        return 0
    print(source.with_suffix(".json").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
