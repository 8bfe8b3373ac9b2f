"""Deployment value functions: parameters(), variables(), deployment(), environment(); names case-insensitive."""

from __future__ import annotations

import pytest

from arm_engine.errors import IssueCode, TemplateError
from arm_engine.scope import DeploymentScope
from arm_engine.values import Deferred
from tests.support.expressions import SimpleContext, ev


def test_parameters_and_variables_are_case_insensitive() -> None:
    ctx = SimpleContext(
        parameters={"storageName": "st1"}, variables={"Prefix": "[concat('p-', parameters('STORAGENAME'))]"}
    )
    assert ev("[parameters('storagename')]", ctx) == "st1"
    assert ev("[variables('prefix')]", ctx) == "p-st1"
    assert ev("[Variables('PREFIX')]", ctx) == "p-st1"


def test_undeclared_names_are_reported() -> None:
    for text, code in (
        ("[parameters('nope')]", IssueCode.UNDECLARED_PARAMETER),
        ("[variables('nope')]", IssueCode.UNDECLARED_VARIABLE),
        ("[parameters(1)]", IssueCode.TYPE_ERROR),
        ("[parameters()]", IssueCode.WRONG_ARITY),
    ):
        with pytest.raises(TemplateError) as info:
            ev(text)
        assert info.value.first.code == code
        assert info.value.first.path == "test"


def test_deployment_and_environment() -> None:
    ctx = SimpleContext(scope=DeploymentScope(deployment_name="deploy-1"))
    assert ev("[deployment().name]", ctx) == "deploy-1"
    assert ev("[deployment().properties.template.contentVersion]", ctx) == "1.0.0.0"
    assert ev("[environment().name]", ctx) == "AzureCloud"
    assert ev("[environment().suffixes.storage]", ctx) == "core.windows.net"
    assert ev("[environment().authentication.audiences[1]]", ctx) == "https://management.azure.com/"
    assert (
        ev("[concat('https://', 'st', '.blob.', environment().suffixes.storage)]") == "https://st.blob.core.windows.net"
    )


def test_environment_results_are_copies() -> None:
    ctx = SimpleContext()
    env = ev("[environment()]", ctx)
    env["name"] = "changed"
    assert ev("[environment().name]", ctx) == "AzureCloud"


def test_deployer_is_deferred() -> None:
    assert isinstance(ev("[deployer().objectId]"), Deferred)
