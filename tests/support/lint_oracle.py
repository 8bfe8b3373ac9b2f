"""What the real compiler said about a baseline sample, read straight from its ``*.diagnostics.*`` file.

This is the tests' own reading of the recordings (CLI-FORMATS.md §8), kept apart from the stand-in's: every
annotation is checked against the source — the text at the computed line and column must be the span the
compiler recorded — so a wrong line or column here fails loudly instead of agreeing with a wrong stand-in.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ANNOTATION = re.compile(
    r"^//@\[(\d+):(\d+)\) \[(\S+) \((Error|Warning|Info)\)\] (.*) \((?:bicep|bicep core linter) (\S*)\) \|(.*)\|$"
)
# On in the baselines' linter configuration, off in a default CLI run (CLI-FORMATS.md §8, caveats).
BASELINE_ONLY_RULES = {"use-resource-id-functions", "use-user-defined-types", "what-if-short-circuiting"}


@dataclass(frozen=True)
class Expected:
    line: int
    col: int
    level: str
    code: str


def _unescape(text: str) -> str:
    return text.replace("\\r", "\r").replace("\\n", "\n").replace("\\t", "\t")


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def expected_diagnostics(diagnostics_file: Path, *, crlf: bool, default_config: bool = True) -> Counter[Expected]:
    newline = "\r\n" if crlf else "\n"
    raw = diagnostics_file.read_bytes().decode("utf-8")
    kept: list[str] = []
    pending: list[tuple[int, re.Match[str]]] = []
    for line in raw.split(newline):
        if line.startswith("//@["):
            m = ANNOTATION.match(line)
            assert m is not None, f"unreadable annotation in {diagnostics_file}: {line[:80]}"
            pending.append((len(kept) - 1, m))
        else:
            kept.append(line)
    source16 = newline.join(kept).encode("utf-16-le")
    starts = [0]
    for text in kept:
        starts.append(starts[-1] + _utf16_len(text) + _utf16_len(newline))
    found: Counter[Expected] = Counter()
    for k, m in pending:
        start, end, code, level, _message, _uri, span = m.groups()
        offset = starts[k] + int(start)
        actual = source16[offset * 2 : (offset + int(end) - int(start)) * 2].decode("utf-16-le")
        assert actual == _unescape(span), f"{diagnostics_file}: span at line {k + 1} is {actual!r}, not {span!r}"
        if default_config and code in BASELINE_ONLY_RULES:
            continue
        found[Expected(k + 1, int(start) + 1, level, code)] += 1
    return found
