"""The rollout file's schema through the CLI: every mistake is refused with exit code 2 before anything connects,
in one message that names the file, the field and what to do — never a traceback. Also what a valid file becomes:
one small entry per target, the template in the content store once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from client.rollout_file import build_rollout_request
from services.content_store import LocalBlobStore
from tests.support.cli_env import EXAMPLE, run_cli

SUB = "00000000-0000-0000-0000-000000000001"


def valid() -> dict[str, Any]:
    return {
        "name": "web",
        "template": str(EXAMPLE / "azuredeploy.json"),
        "parameters": str(EXAMPLE / "azuredeploy.parameters.json"),
        "location": "westeurope",
        "rings": [
            {"name": "canary", "bake": "30m", "targets": [{"subscription": SUB, "resource_group": "rg-a"}]},
            {
                "name": "broad",
                "max_parallel": 5,
                "on_failure": "rollback",
                "targets": [{"subscription": SUB, "resource_group": "rg-b", "location": "eastus"}],
            },
        ],
    }


def write(tmp_path: Path, doc: Any, name: str = "rollout.yaml") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return path


def edit(change: Any) -> dict[str, Any]:
    doc = valid()
    change(doc)
    return doc


def t(d: dict[str, Any], ring: int) -> dict[str, Any]:
    """The first target of a ring."""
    return d["rings"][ring]["targets"][0]  # type: ignore[no-any-return]


CASES = [
    ("unknown field", edit(lambda d: t(d, 0).update(resourcegroup="x")), "rings[0].targets[0].resourcegroup"),
    ("missing field", edit(lambda d: t(d, 1).pop("subscription")), "rings[1].targets[0].subscription: is required"),
    ("bad duration", edit(lambda d: d["rings"][0].update(bake="ten minutes")), "rings[0].bake"),
    ("bake too long", edit(lambda d: d["rings"][0].update(bake="90d")), "rings[0].bake"),
    ("parallel zero", edit(lambda d: d["rings"][1].update(max_parallel=0)), "rings[1].max_parallel"),
    ("bad on_failure", edit(lambda d: d["rings"][1].update(on_failure="ignore")), "rings[1].on_failure"),
    ("no rings", edit(lambda d: d.update(rings=[])), "rings:"),
    ("empty ring", edit(lambda d: d["rings"][0].update(targets=[])), "rings[0].targets"),
    ("bad name", edit(lambda d: d.update(name="Web Fleet!")), "name:"),
    ("bad subscription", edit(lambda d: t(d, 0).update(subscription="prod")),
     "rings[0].targets[0]: The subscription 'prod'"),
    ("bad location", edit(lambda d: t(d, 1).update(location="mars")), "rings[1].targets[0]: The location 'mars'"),
    ("no location", edit(lambda d: d.pop("location")), "rings[0].targets[0]: no location"),
    ("duplicate target", edit(lambda d: t(d, 1).update(resource_group="RG-A")),
     "already a target at rings[0].targets[0]"),
    ("duplicate ring", edit(lambda d: d["rings"][1].update(name="canary")), "rings[1].name: 'canary' names two rings"),
    ("undeclared override", edit(lambda d: t(d, 0).update(parameters={"nope": 1})),
     "rings[0].targets[0].parameters.nope: the template declares no parameter"),
    ("missing template", edit(lambda d: d.update(template="missing.json")), "missing.json"),
    ("missing gates file", edit(lambda d: d["rings"][0].update(health_gates="gates.json")), "rings[0].health_gates"),
]  # fmt: skip


@pytest.mark.parametrize(("doc", "expected"), [(d, e) for _, d, e in CASES], ids=[c[0] for c in CASES])
def test_a_bad_rollout_file_is_refused_naming_the_field(tmp_path, capsys, doc, expected):
    path = write(tmp_path, doc)
    for action in ("plan", "start"):
        run = run_cli(["rollout", action, str(path)], capsys)
        assert run.code == 2, run
        assert expected in run.err, run.err
        assert "Traceback" not in run.err + run.out
        assert run.err.startswith("error:") and str(path.name) in run.err


@pytest.mark.parametrize(
    ("text", "name", "expected"),
    [
        ("name: [unclosed", "r.yaml", "is not valid YAML"),
        ('{"name": ', "r.json", "is not valid JSON"),
        ("- just\n- a list\n", "r.yaml", "must hold a mapping"),
    ],
)
def test_an_unreadable_rollout_file_is_refused(tmp_path, capsys, text, name, expected):
    run = run_cli(["rollout", "plan", str(write(tmp_path, text, name))], capsys)
    assert run.code == 2 and expected in run.err and "Traceback" not in run.err


def test_a_missing_rollout_file_is_refused(tmp_path, capsys):
    run = run_cli(["rollout", "start", str(tmp_path / "nope.yaml")], capsys)
    assert run.code == 2 and "does not exist" in run.err


def test_a_secure_parameter_cannot_be_overridden_in_the_file(tmp_path, capsys):
    template = json.loads((EXAMPLE / "azuredeploy.json").read_text())
    template["parameters"]["adminPassword"] = {"type": "securestring"}
    (tmp_path / "t.json").write_text(json.dumps(template))
    doc = valid()
    doc["template"] = "t.json"  # relative to the rollout file
    doc["rings"][0]["targets"][0]["parameters"] = {"adminPassword": "hunter2"}
    run = run_cli(["rollout", "plan", str(write(tmp_path, doc))], capsys)
    assert run.code == 2 and "adminPassword: a secure parameter" in run.err
    assert "hunter2" not in run.err + run.out


def test_a_valid_file_becomes_one_small_entry_per_target(tmp_path):
    doc = valid()
    doc["rings"][1]["targets"] = [
        {"subscription": SUB, "resource_group": f"rg-{i}", "parameters": {"storageSku": "Standard_GRS"}}
        for i in range(500)
    ]
    doc["rings"][1]["health_gates"] = "gates.json"
    (tmp_path / "gates.json").write_text(json.dumps({"checks": [{"kind": "tcp", "host": "example.com", "port": 443}]}))
    store = LocalBlobStore(tmp_path / "blobs")
    request = build_rollout_request(write(tmp_path, doc), store=store, initiator="me")
    assert [len(r.targets) for r in request.rings] == [1, 500]
    assert request.rings[0].bake_seconds == 1800 and request.rings[1].gates is not None
    assert request.rings[1].targets[0].location == "westeurope"  # the file's default
    child = request.target_request(request.rings[1].targets[7])
    assert child.resource_group == "rg-7" and child.parameters["storageSku"] == {"value": "Standard_GRS"}
    assert child.template == request.base.template  # one template in the store, referenced by every target
    assert len(request.model_dump_json()) < 150_000  # 501 targets, far under Temporal's 2 MB payload limit
