"""Every bad input: a one-paragraph message naming the input and the fix, the documented exit code, no traceback,
and no workflow started."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from client.embedded import DevInstance, EmbeddedDefault
from client.exit_codes import ExitCode
from tests.support.cli_env import EXAMPLE, CliRun, count_workflows, run_cli

TEMPLATE = str(EXAMPLE / "azuredeploy.json")
PARAMS = str(EXAMPLE / "azuredeploy.parameters.json")


def deploy_argv(*extra: str, template: str = TEMPLATE, params: str | None = PARAMS) -> list[str]:
    argv = ["deploy", "--local", "-g", "cli-test-rg", "-l", "eastus", "-t", template]
    if params:
        argv += ["-p", params]
    return [*argv, *extra]


def assert_refused(result: CliRun, code: ExitCode, *fragments: str) -> None:
    assert result.code == code, result.err
    assert "Traceback" not in result.err and "Traceback" not in result.out
    message = result.err.strip()
    assert message.startswith("error:") or "usage:" in message, message
    for fragment in fragments:
        assert fragment in result.err, f"{fragment!r} not in {result.err!r}"


@pytest.fixture
def no_new_workflow(temporal_dev: EmbeddedDefault, local_state: Path):
    before = count_workflows(temporal_dev)
    yield
    assert count_workflows(temporal_dev) == before, "a workflow was started for a bad input"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.usefixtures("no_new_workflow")
class TestDeployRefusesBadInput:
    def test_missing_template(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        missing = str(tmp_path / "absent.json")
        result = run_cli(deploy_argv(template=missing), capsys)
        assert_refused(result, ExitCode.USAGE, missing, "-t/--template", "does not exist")

    def test_missing_parameters_file(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        result = run_cli(deploy_argv(params=str(tmp_path / "p.json")), capsys)
        assert_refused(result, ExitCode.USAGE, "p.json", "-p/--parameters", "does not exist")

    def test_bad_json_template(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        bad = tmp_path / "bad.json"
        bad.write_text('{\n  "resources": [\n    {"type": "x",}\n  ]\n}\n')
        result = run_cli(deploy_argv(template=str(bad)), capsys)
        assert_refused(result, ExitCode.USAGE, "bad.json", "not valid JSON", "line 3")

    def test_bad_json_parameters(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        bad = tmp_path / "params.json"
        bad.write_text('{"parameters": {"namePrefix": {"value": "x"}}')
        result = run_cli(deploy_argv(params=str(bad)), capsys)
        assert_refused(result, ExitCode.USAGE, "params.json", "-p/--parameters", "line 1")

    def test_param_without_equals(self, capsys: pytest.CaptureFixture[str]) -> None:
        result = run_cli(deploy_argv("--param", "storageSku"), capsys)
        assert_refused(result, ExitCode.USAGE, "--param 'storageSku'", "NAME=VALUE")

    @pytest.mark.parametrize("name", ["bad name", "rg/child", "ends-with-dot.", "x" * 91])
    def test_invalid_resource_group(self, name: str, capsys: pytest.CaptureFixture[str]) -> None:
        argv = deploy_argv()
        argv[argv.index("cli-test-rg")] = name
        result = run_cli(argv, capsys)
        assert_refused(result, ExitCode.USAGE, "-g/--resource-group")

    @pytest.mark.parametrize("location", ["mars", "east-us", ""])
    def test_invalid_location(self, location: str, capsys: pytest.CaptureFixture[str]) -> None:
        argv = deploy_argv()
        argv[argv.index("eastus")] = location
        result = run_cli(argv, capsys)
        assert_refused(result, ExitCode.USAGE, "-l/--location")

    def test_malformed_subscription(self, capsys: pytest.CaptureFixture[str]) -> None:
        result = run_cli(deploy_argv("--subscription", "my-sub"), capsys)
        assert_refused(result, ExitCode.USAGE, "'my-sub'", "--subscription", "GUID")

    def test_missing_required_flag(self, capsys: pytest.CaptureFixture[str]) -> None:
        result = run_cli(["deploy", "--local", "-l", "eastus", "-t", TEMPLATE], capsys)
        assert_refused(result, ExitCode.USAGE, "-g/--resource-group")

    def test_bad_mode(self, capsys: pytest.CaptureFixture[str]) -> None:
        result = run_cli(deploy_argv("--mode", "Everything"), capsys)
        assert_refused(result, ExitCode.USAGE, "--mode")

    def test_unknown_parameter_name(self, capsys: pytest.CaptureFixture[str]) -> None:
        result = run_cli(deploy_argv("--param", "nmePrefix=demo"), capsys)
        assert_refused(result, ExitCode.LOGIC_FAILURE, "nmePrefix", "no workflow was started")

    def test_wrong_parameter_type(self, capsys: pytest.CaptureFixture[str]) -> None:
        result = run_cli(deploy_argv("--param", "tags=[1,2]"), capsys)
        assert_refused(result, ExitCode.LOGIC_FAILURE, "tags", "no workflow was started")

    def test_missing_required_parameter(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        params = tmp_path / "partial.json"
        params.write_text(json.dumps({"parameters": {"storageSku": {"value": "Standard_LRS"}}}))
        result = run_cli(deploy_argv(params=str(params)), capsys)
        assert_refused(result, ExitCode.LOGIC_FAILURE, "namePrefix", "no workflow was started")

    def test_value_outside_allowed_values(self, capsys: pytest.CaptureFixture[str]) -> None:
        result = run_cli(deploy_argv("--param", "storageSku=Premium_XYZ"), capsys)
        assert_refused(result, ExitCode.LOGIC_FAILURE, "storageSku", "Premium_XYZ")

    def test_bicepparam_for_another_template_is_refused(self, tmp_path: Path, capsys) -> None:
        # .bicep and .bicepparam are deployable since issue 5 (compiled on the worker); a -t that is not the
        # .bicepparam's `using` target is still a mistake caught here, before any workflow starts.
        (tmp_path / "main.bicep").write_text("param name string\n")
        (tmp_path / "other.bicep").write_text("param name string\n")
        (tmp_path / "main.bicepparam").write_text("using './main.bicep'\nparam name = 'x'\n")
        argv = deploy_argv(template=str(tmp_path / "other.bicep"), params=str(tmp_path / "main.bicepparam"))
        result = run_cli(argv, capsys)
        assert_refused(result, ExitCode.USAGE, "main.bicepparam", "other.bicep", "`using`")

    def test_secure_parameter_value_is_never_echoed(self, tmp_path: Path, capsys) -> None:
        template = tmp_path / "secure.json"
        template.write_text(
            json.dumps(
                {
                    "$schema": "x",
                    "contentVersion": "1.0.0.0",
                    "parameters": {"adminPassword": {"type": "securestring", "minLength": 30}},
                    "resources": [],
                }
            )
        )
        result = run_cli(
            deploy_argv("--param", "adminPassword=hunter2-not-for-logs", template=str(template), params=None), capsys
        )
        assert_refused(result, ExitCode.LOGIC_FAILURE, "adminPassword")
        assert "hunter2-not-for-logs" not in result.err + result.out

    def test_unreachable_arm(
        self, temporal_dev: EmbeddedDefault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
    ) -> None:
        assert temporal_dev.instance is not None
        dead_arm = DevInstance.from_json(temporal_dev.instance.to_json())
        dead_arm.arm_endpoint = f"https://127.0.0.1:{free_port()}"
        (tmp_path / "dev.json").write_text(dead_arm.to_json())
        monkeypatch.setenv("ORCHESTRATOR_STATE_DIR", str(tmp_path))
        result = run_cli(deploy_argv(), capsys)
        assert_refused(result, ExitCode.ENVIRONMENTAL, dead_arm.arm_endpoint, "no workflow was started")


def test_unreachable_temporal(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{port}")
    argv = deploy_argv("--subscription", "00000000-0000-0000-0000-000000000001")
    argv.remove("--local")
    result = run_cli(argv, capsys)
    assert_refused(result, ExitCode.ENVIRONMENTAL, f"127.0.0.1:{port}", "TEMPORAL_ADDRESS", "Nothing was started")


def test_local_without_a_running_dev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("ORCHESTRATOR_STATE_DIR", str(tmp_path))
    result = run_cli(deploy_argv(), capsys)
    assert_refused(result, ExitCode.ENVIRONMENTAL, "starter.py dev", str(tmp_path))


@pytest.mark.usefixtures("local_state")
class TestOtherCommands:
    def test_approve_unknown_workflow(self, capsys: pytest.CaptureFixture[str]) -> None:
        result = run_cli(["approve", "deploy-no-such-workflow", "--local"], capsys)
        assert_refused(result, ExitCode.USAGE, "deploy-no-such-workflow", "starter.py list")

    def test_reject_unknown_workflow(self, capsys: pytest.CaptureFixture[str]) -> None:
        result = run_cli(["reject", "deploy-nope", "--local", "--reason", "no"], capsys)
        assert_refused(result, ExitCode.USAGE, "deploy-nope")

    def test_status_unknown_workflow(self, capsys: pytest.CaptureFixture[str]) -> None:
        result = run_cli(["status", "deploy-nope", "--local"], capsys)
        assert_refused(result, ExitCode.USAGE, "deploy-nope", "starter.py list")

    def test_list_json_is_a_list(self, capsys: pytest.CaptureFixture[str]) -> None:
        result = run_cli(["list", "--local", "--output", "json"], capsys)
        assert result.code == ExitCode.OK, result.err
        assert isinstance(json.loads(result.out), list)

    def test_list_bad_limit(self, capsys: pytest.CaptureFixture[str]) -> None:
        result = run_cli(["list", "--local", "--limit", "0"], capsys)
        assert_refused(result, ExitCode.USAGE, "--limit")


def test_no_subscription_outside_local(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{free_port()}")  # never reached: refused before connecting
    argv = deploy_argv()
    argv.remove("--local")
    result = run_cli(argv, capsys)
    assert_refused(result, ExitCode.USAGE, "--subscription", "AZURE_SUBSCRIPTION_ID")


def test_json_output_gets_a_json_refusal(tmp_path: Path, local_state: Path, capsys) -> None:
    result = run_cli(deploy_argv("--output", "json", template=str(tmp_path / "absent.json")), capsys)
    assert result.code == ExitCode.USAGE
    doc = json.loads(result.out)
    assert doc["error"]["exit_code"] == 2 and "absent.json" in doc["error"]["message"]


@pytest.mark.parametrize("command", [["status", "deploy-anything"], ["list"]])
def test_malformed_codec_key_is_a_usage_error(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad ORCHESTRATOR_CODEC_KEYS is the user's to fix (exit 2), not an unreachable server (exit 3); the value
    is never echoed."""
    monkeypatch.setenv("ORCHESTRATOR_CODEC_KEYS", "k1=dG9vLXNob3J0LXNlY3JldA==")  # 16 bytes, AES-256 needs 32
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{free_port()}")  # never reached: refused before connecting
    result = run_cli(command, capsys)
    assert_refused(result, ExitCode.USAGE, "ORCHESTRATOR_CODEC_KEYS", "Nothing was started")
    assert "dG9vLXNob3J0LXNlY3JldA" not in result.err
