"""The deploy command's health flags, parsed by a real argparse parser."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from client.health.cli import add_health_arguments, health_spec_from_args
from client.health.declare import HealthDeclarationError
from contract.health_targets import declared_outputs, declared_outputs_from_bicep

BICEP = """
param location string = resourceGroup().location
@description('the site host')
output webHost string = site.properties.defaultHostName
  output db object = { fqdn: server.properties.fullyQualifiedDomainName }
output ids array = [for i in range(0, 2): i]
output custom myType = {}
// output commented string = 'no'
var outputName = 'not an output'
"""


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_health_arguments(parser)
    return parser.parse_args(list(argv))


def test_flags_and_the_file_beside_the_template(tmp_path: Path) -> None:
    template = tmp_path / "main.json"
    template.write_text(json.dumps({"resources": [], "outputs": {"webHost": {"type": "string", "value": "x"}}}))
    (tmp_path / "main.health.json").write_text(json.dumps({"checks": [{"kind": "arm", "name": "resources"}]}))
    args = parse(
        "--health-check",
        "http:GET https://{outputs.webHost}/health",
        "--health-check",
        "tcp:db:5432 name=db",
        "--health-window",
        "2m",
        "--health-interval",
        "1s",
    )
    spec = health_spec_from_args(
        args, template_path=template, declared_outputs=declared_outputs(json.loads(template.read_text()))
    )
    assert [c.name for c in spec.checks] == ["resources", "http GET https://{outputs.webHost}/health", "db"]
    assert (spec.window_seconds, spec.retry_interval_seconds, spec.timeout_seconds) == (120, 1, 10)


def test_skip_health_reads_nothing_but_refuses_health_flags(tmp_path: Path) -> None:
    template = tmp_path / "main.json"
    (tmp_path / "main.health.json").write_text("{ broken")
    assert health_spec_from_args(parse(), template_path=template, declared_outputs=[], skip_health=True).checks == []
    with pytest.raises(HealthDeclarationError, match="--skip-health skips the health stage, but --health-check"):
        health_spec_from_args(
            parse("--health-check", "tcp:h:1"), template_path=template, declared_outputs=[], skip_health=True
        )
    with pytest.raises(HealthDeclarationError, match="is not valid JSON"):
        health_spec_from_args(parse(), template_path=template, declared_outputs=[])


def test_bicep_outputs_are_read_from_the_source() -> None:
    assert declared_outputs_from_bicep(BICEP) == {"webHost": "string", "db": "object", "ids": "array", "custom": None}
    args = parse("--health-check", "tcp:{outputs.db.fqdn}:5432", "--health-check", "http:https://{outputs.webHost}/")
    spec = health_spec_from_args(args, template_path=None, declared_outputs=declared_outputs_from_bicep(BICEP))
    assert len(spec.checks) == 2
    with pytest.raises(
        HealthDeclarationError, match=r"'webHst', which the template does not declare\. Did you mean 'webHost'"
    ):
        health_spec_from_args(
            parse("--health-check", "http:https://{outputs.webHst}/"),
            template_path=None,
            declared_outputs=declared_outputs_from_bicep(BICEP),
        )
