"""Nested Microsoft.Resources/deployments (what Bicep modules compile to), and the deployer mode the local ARM
uses: each body evaluated just before it is deployed, reading what earlier deployments returned."""

from __future__ import annotations

from typing import Any

from arm_engine import Deferred, IssueCode
from arm_engine.unique import arm_guid
from tests.support.engine_templates import RG, SUB, DictState, RecordingDeployer, expand, expand_error, rid, template

DEPLOYMENTS = "Microsoft.Resources/deployments"
STORAGE = "Microsoft.Storage/storageAccounts"


def module(name: str, inner: dict[str, Any], *, scope: str | None = "inner", **extra: Any) -> dict[str, Any]:
    props: dict[str, Any] = {"mode": "Incremental", "template": inner}
    if scope is not None:
        props["expressionEvaluationOptions"] = {"scope": scope}
    props.update(extra.pop("properties", {}))
    return {"type": DEPLOYMENTS, "apiVersion": "2022-09-01", "name": name, "properties": props, **extra}


def inner_storage_template() -> dict[str, Any]:
    return template(
        [
            {
                "type": STORAGE,
                "apiVersion": "2023-01-01",
                "name": "[parameters('name')]",
                "location": "[parameters('location')]",
                "properties": {"group": "[resourceGroup().name]", "deployment": "[deployment().name]"},
            }
        ],
        parameters={"name": {"type": "string"}, "location": {"type": "string", "defaultValue": "northeurope"}},
        variables={"suffix": "-inner"},
        outputs={
            "nameOut": {"type": "string", "value": "[concat(parameters('name'), variables('suffix'))]"},
            "blob": {"type": "string", "value": "[reference(parameters('name')).primaryEndpoints.blob]"},
        },
    )


class TestInnerScope:
    def doc(self) -> dict[str, Any]:
        return template(
            [
                module(
                    "mod",
                    inner_storage_template(),
                    properties={"parameters": {"name": {"value": "[parameters('storeName')]"}}},
                ),
                {
                    "type": "Microsoft.Web/sites",
                    "apiVersion": "2022-09-01",
                    "name": "[reference('mod').outputs.nameOut.value]",
                    "properties": {"blob": "[reference('mod').outputs.blob.value]"},
                    "dependsOn": ["[resourceId('Microsoft.Resources/deployments', 'mod')]"],
                },
            ],
            parameters={"storeName": {"type": "string"}},
            variables={"suffix": "-outer"},
            outputs={"fromModule": {"type": "string", "value": "[reference('mod').outputs.nameOut.value]"}},
        )

    def test_inner_resources_use_the_nested_parameters_variables_and_scope(self) -> None:
        result = expand(self.doc(), parameters={"storeName": {"value": "st9"}})
        store = result.resource(rid(STORAGE, "st9"))
        assert store is not None
        assert store.location == "northeurope"  # the nested template's own default
        assert store.properties == {"group": RG, "deployment": "mod"}
        assert store.deployment_path == ["mod"]
        deployment = result.resource(rid(DEPLOYMENTS, "mod"))
        assert deployment is not None and deployment.body["properties"]["parameters"] == {"name": {"value": "st9"}}

    def test_module_outputs_flow_out_when_known(self) -> None:
        result = expand(self.doc(), parameters={"storeName": {"value": "st9"}})
        assert result.outputs["fromModule"].value == "st9-inner"  # the inner variable, not the outer one
        site = result.resource(rid("Microsoft.Web/sites", "st9-inner"))
        assert site is not None and isinstance(site.properties["blob"], Deferred)
        # the deployment completes after its inner resources; the site waits for the deployment
        assert result.order == [rid(STORAGE, "st9"), rid(DEPLOYMENTS, "mod"), site.id]

    def test_nested_parameter_errors_name_the_nested_path(self) -> None:
        doc = template([module("mod", inner_storage_template(), properties={"parameters": {"name": {"value": 5}}})])
        issue = expand_error(doc).first
        assert issue.code == IssueCode.PARAMETER_TYPE
        assert issue.path == "resources[0].properties.parameters.name"


class TestOuterScope:
    def test_outer_scope_evaluates_in_the_parent_and_places_in_the_target_group(self) -> None:
        inner = template(
            [
                {
                    "type": STORAGE,
                    "apiVersion": "2023-01-01",
                    "name": "[parameters('storeName')]",
                    "properties": {"group": "[resourceGroup().name]", "v": "[variables('v')]"},
                }
            ]
        )
        doc = template(
            [module("cross", inner, scope=None, resourceGroup="other-rg")],
            parameters={"storeName": {"type": "string", "defaultValue": "outerstore"}},
            variables={"v": "parent"},
        )
        result = expand(doc)
        store = result.resource(rid(STORAGE, "outerstore", group="other-rg"))
        assert store is not None
        # outer scope: resourceGroup() is the parent's, as ARM evaluates it before the nested deployment starts
        assert store.properties == {"group": RG, "v": "parent"}
        assert result.resource(rid(DEPLOYMENTS, "cross", group="other-rg")) is not None

    def test_inner_scope_in_another_group_sees_that_group(self) -> None:
        inner = template(
            [{"type": STORAGE, "apiVersion": "2023-01-01", "name": "s", "properties": {"g": "[resourceGroup().name]"}}]
        )
        doc = template(
            [module("cross", inner, resourceGroup="other-rg", subscriptionId="22222222-2222-2222-2222-222222222222")]
        )
        result = expand(doc)
        store = result.resource(rid(STORAGE, "s", group="other-rg", sub="22222222-2222-2222-2222-222222222222"))
        assert store is not None and store.properties == {"g": "other-rg"}

    def test_nested_deployment_depends_on_what_its_resources_reference_outside(self) -> None:
        inner = template(
            [
                {
                    "type": "Microsoft.Web/sites",
                    "apiVersion": "2022-09-01",
                    "name": "app",
                    "properties": {"k": "[reference('st1').x]"},
                }
            ]
        )
        doc = template(
            [module("m", inner, scope="outer"), {"type": STORAGE, "apiVersion": "2023-01-01", "name": "st1"}]
        )
        result = expand(doc)
        deployment = result.resource(rid(DEPLOYMENTS, "m"))
        assert deployment is not None and deployment.depends_on == [rid(STORAGE, "st1")]
        assert result.order == [rid(STORAGE, "st1"), rid("Microsoft.Web/sites", "app"), rid(DEPLOYMENTS, "m")]


def test_linked_template_is_deferred_not_a_crash() -> None:
    doc = template(
        [
            {
                "type": DEPLOYMENTS,
                "apiVersion": "2022-09-01",
                "name": "linked",
                "properties": {"mode": "Incremental", "templateLink": {"uri": "https://example.com/t.json"}},
            }
        ],
        outputs={"o": {"type": "object", "value": "[reference('linked').outputs]"}},
    )
    result = expand(doc)
    (deployment,) = result.resources
    assert isinstance(deployment.body["properties"]["template"], Deferred)
    assert "templateLink" in deployment.body["properties"]["template"].reason
    assert result.outputs["o"].deferred


def test_copied_modules() -> None:
    inner = template(
        [{"type": STORAGE, "apiVersion": "2023-01-01", "name": "[parameters('n')]"}],
        parameters={"n": {"type": "string"}},
    )
    doc = template(
        [
            {
                **module(
                    "[format('m{0}', copyIndex())]",
                    inner,
                    properties={"parameters": {"n": {"value": "[format('s{0}', copyIndex())]"}}},
                ),
                "copy": {"name": "mods", "count": 3},
            }
        ]
    )
    result = expand(doc)
    assert [r.name for r in result.resources if r.type == STORAGE] == ["s0", "s1", "s2"]
    assert result.order.index(rid(STORAGE, "s1")) < result.order.index(rid(DEPLOYMENTS, "m1"))


class TestDeployerMode:
    def test_each_body_sees_what_earlier_deployments_returned(self) -> None:
        doc = template(
            [
                {"type": STORAGE, "apiVersion": "2023-01-01", "name": "st1", "properties": {"tier": "Hot"}},
                {
                    "type": "Microsoft.Web/sites",
                    "apiVersion": "2022-09-01",
                    "name": "app",
                    "properties": {
                        "storeState": "[reference('st1').provisioningState]",
                        "storeTier": "[reference('st1').tier]",
                        "key": "[listKeys('st1', '2023-01-01').keys[0].value]",
                    },
                },
            ],
            outputs={"order": {"type": "int", "value": "[reference('app').deployedOrder]"}},
        )
        state = DictState()
        deployer = RecordingDeployer(state)
        result = expand(doc, state=state, deployer=deployer)
        assert [r.name for r in deployer.deployed] == ["st1", "app"]
        app = deployer.deployed[1]
        assert app.properties["storeState"] == "Succeeded" and app.properties["storeTier"] == "Hot"
        assert app.properties["key"] == "secret-of-st1"
        assert result.outputs["order"].value == 2 and not result.outputs["order"].deferred

    def test_nested_deployment_outputs_come_from_deployed_state(self) -> None:
        doc = template(
            [
                module("mod", inner_storage_template(), properties={"parameters": {"name": {"value": "st7"}}}),
                {
                    "type": "Microsoft.Web/sites",
                    "apiVersion": "2022-09-01",
                    "name": "app",
                    "properties": {"inner": "[reference('mod').outputs.nameOut.value]"},
                    "dependsOn": ["mod"],
                },
            ],
            outputs={"blob": {"type": "string", "value": "[reference('mod').outputs.blob.value]"}},
        )
        state = DictState()

        class BlobDeployer(RecordingDeployer):
            def deploy(self, resource: Any) -> dict[str, Any]:
                payload = super().deploy(resource)
                if resource.type == STORAGE:
                    payload["properties"]["primaryEndpoints"] = {"blob": f"https://{resource.name}.blob/"}
                return payload

        deployer = BlobDeployer(state)
        result = expand(doc, state=state, deployer=deployer)
        assert [r.type for r in deployer.deployed] == [STORAGE, DEPLOYMENTS, "Microsoft.Web/sites"]
        assert deployer.deployed[2].properties["inner"] == "st7-inner"
        assert result.outputs["blob"].value == "https://st7.blob/"

    def test_existing_resources_are_read_not_deployed(self) -> None:
        doc = template(
            {
                "kv": {"existing": True, "type": "Microsoft.KeyVault/vaults", "apiVersion": "2023-02-01", "name": "kv"},
                "app": {
                    "type": "Microsoft.Web/sites",
                    "apiVersion": "2022-09-01",
                    "name": "app",
                    "properties": {"uri": "[reference('kv').vaultUri]"},
                },
            },
            languageVersion="2.0",
        )
        state = DictState({rid("Microsoft.KeyVault/vaults", "kv"): {"properties": {"vaultUri": "https://kv/"}}})
        deployer = RecordingDeployer(state)
        expand(doc, state=state, deployer=deployer)
        assert [r.name for r in deployer.deployed] == ["app"]
        assert deployer.deployed[0].properties["uri"] == "https://kv/"

    def test_previous_state_is_read_without_a_deployer(self) -> None:
        doc = template(
            [{"type": STORAGE, "apiVersion": "2023-01-01", "name": "st1"}],
            outputs={"tier": {"type": "string", "value": "[reference('st1').tier]"}},
        )
        state = DictState({rid(STORAGE, "st1"): {"properties": {"tier": "Cool"}}})
        assert expand(doc, state=state).outputs["tier"].value == "Cool"
        assert SUB in rid(STORAGE, "st1")


def test_deployer_exceptions_propagate_unchanged() -> None:
    class Boom(Exception):
        pass

    error = Boom("ARM said no")

    class FailingDeployer:
        def deploy(self, resource: Any) -> dict[str, Any]:
            raise error

    doc = template([{"type": STORAGE, "apiVersion": "2023-01-01", "name": "st1"}])
    try:
        expand(doc, state=DictState(), deployer=FailingDeployer())
    except Boom as exc:
        assert exc is error
    else:
        raise AssertionError("the deployer's exception was swallowed")


def test_module_whose_loop_count_is_known_only_at_deployment() -> None:
    """A module looping over another module's output: ARM expands it when it starts; offline it is deferred."""
    inner = template(
        [
            {
                "type": STORAGE,
                "apiVersion": "2023-01-01",
                "name": "[format('s{0}', copyIndex())]",
                "copy": {"name": "stores", "count": "[length(parameters('names'))]"},
            }
        ],
        parameters={"names": {"type": "array"}},
    )
    doc = template(
        [
            {"type": STORAGE, "apiVersion": "2023-01-01", "name": "first"},
            module("later", inner, properties={"parameters": {"names": {"value": "[reference('first').names]"}}}),
        ]
    )
    result = expand(doc)
    deployment = result.resource(rid(DEPLOYMENTS, "later"))
    assert deployment is not None and isinstance(deployment.body["properties"]["template"], Deferred)
    assert deployment.depends_on == [rid(STORAGE, "first")]
    assert [r.name for r in result.resources] == ["first", "later"]
    # at the top level the same loop is an error: ARM needs the count when the deployment starts
    top = template(
        [
            {"type": STORAGE, "apiVersion": "2023-01-01", "name": "first"},
            {**inner["resources"][0], "copy": {"name": "s", "count": "[length(reference('first').names)]"}},
        ]
    )
    assert expand_error(top).first.code == IssueCode.COPY_COUNT


class TestDeployerResolvesDeploymentTimeValues:
    def test_a_name_built_from_a_reference_is_deployed_under_its_real_id(self) -> None:
        doc = template(
            [
                {"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31", "name": "id1"},
                {
                    "type": "Microsoft.Authorization/roleAssignments",
                    "apiVersion": "2022-04-01",
                    "name": "[guid(reference('id1').principalId, string(copyIndex()))]",
                    "properties": {"principalId": "[reference('id1').principalId]"},
                    "copy": {"name": "assignments", "count": 2},
                },
            ]
        )
        offline = expand(doc)
        # known only after id1 is deployed: both instances show the expression, which is not a duplicate
        assert [r.name.startswith("[guid(") for r in offline.resources] == [False, True, True]

        class IdentityDeployer(RecordingDeployer):
            def deploy(self, resource: Any) -> dict[str, Any]:
                payload = super().deploy(resource)
                payload["properties"]["principalId"] = "pid-123"
                return payload

        state = DictState()
        deployer = IdentityDeployer(state)
        result = expand(doc, state=state, deployer=deployer)
        first, second = deployer.deployed[1:]
        assert "[" not in first.name and first.properties["principalId"] == "pid-123"
        assert first.name == arm_guid("pid-123", "0") and second.name == arm_guid("pid-123", "1")
        assert first.id == rid("Microsoft.Authorization/roleAssignments", first.name)
        assert result.order[1:] == [first.id, second.id] and result.resources[1].id == first.id

    def test_a_module_looping_over_another_modules_output_is_expanded_when_it_starts(self) -> None:
        producer = template(
            [],
            outputs={"names": {"type": "array", "value": "[createArray('a', 'b', 'c')]"}},
        )
        consumer = template(
            [
                {
                    "type": STORAGE,
                    "apiVersion": "2023-01-01",
                    "name": "[parameters('names')[copyIndex()]]",
                    "copy": {"name": "stores", "count": "[length(parameters('names'))]"},
                }
            ],
            parameters={"names": {"type": "array"}},
        )
        doc = template(
            [
                module("producer", producer),
                {
                    **module(
                        "consumer",
                        consumer,
                        properties={"parameters": {"names": {"value": "[reference('probe').names]"}}},
                    ),
                    "dependsOn": ["probe"],
                },
                {"type": STORAGE, "apiVersion": "2023-01-01", "name": "probe"},
            ]
        )

        class ProbeDeployer(RecordingDeployer):
            def deploy(self, resource: Any) -> dict[str, Any]:
                payload = super().deploy(resource)
                if resource.name == "probe":
                    payload["properties"]["names"] = ["x", "y"]
                return payload

        offline = expand(doc)
        assert [r.name for r in offline.resources if r.type == STORAGE] == ["probe"]
        state = DictState()
        deployer = ProbeDeployer(state)
        result = expand(doc, state=state, deployer=deployer)
        deployed = [r.name for r in deployer.deployed]
        assert deployed.index("probe") < deployed.index("x") < deployed.index("consumer")
        assert {"x", "y"} <= set(deployed)
        assert rid(STORAGE, "y") in result.order and result.resource(rid(STORAGE, "x")) is not None


def test_another_groups_location_comes_from_state_or_is_deferred() -> None:
    inner = template(
        [{"type": STORAGE, "apiVersion": "2023-01-01", "name": "s", "location": "[resourceGroup().location]"}]
    )
    doc = template([module("m", inner, resourceGroup="other-rg")])
    offline = expand(doc).resource(rid(STORAGE, "s", group="other-rg"))
    assert offline is not None and offline.location is None and isinstance(offline.body["location"], Deferred)
    state = DictState({f"/subscriptions/{SUB}/resourceGroups/other-rg": {"location": "japaneast"}})
    known = expand(doc, state=state).resource(rid(STORAGE, "s", group="other-rg"))
    assert known is not None and known.location == "japaneast"
