"""``python -m local_arm ...`` — the same as ``python starter.py local-arm ...``."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main(sys.argv[1:]))
