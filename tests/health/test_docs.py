"""docs/HEALTH.md stays true: its examples are accepted as written."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from client.health.declare import load_health_spec, parse_health_check_flag

DOC = Path(__file__).resolve().parents[2] / "docs" / "HEALTH.md"


def test_the_documented_health_file_is_valid(tmp_path: Path) -> None:
    [example] = re.findall(r"```json\n(.*?)```", DOC.read_text(), flags=re.S)
    path = tmp_path / "main.health.json"
    path.write_text(example)
    spec = load_health_spec(template_path=None, health_file=path, declared_outputs=["webHost", "db"])
    assert [c.name for c in spec.checks] == ["resources", "web", "db"]
    assert spec.window_seconds == 300 and json.loads(example)["retry_interval_seconds"] == spec.retry_interval_seconds


def test_the_documented_flags_are_valid() -> None:
    [block] = re.findall(r"```bash\n(.*?)```", DOC.read_text(), flags=re.S)
    values = [shlex.split(line)[1] for line in block.splitlines() if line.startswith("--health-check")]
    assert len(values) == 5
    for value in values:
        parse_health_check_flag(value)
