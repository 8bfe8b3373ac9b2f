"""Reading a CLI subprocess's stderr as the user would, line by line while it runs."""

from __future__ import annotations

import subprocess
import threading
import time
from typing import Any


class StderrWatcher:
    """Collects a subprocess's stderr lines as they come, so a test can act on what the user would read."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stderr is not None
        self._thread = threading.Thread(target=self._read, args=(proc.stderr,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, fragment: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if fragment in line:
                    return line
            time.sleep(0.1)
        raise AssertionError(f"{fragment!r} never appeared on stderr:\n" + "\n".join(self.lines))

    def text(self) -> str:
        self._thread.join(timeout=10)
        return "\n".join(self.lines)
