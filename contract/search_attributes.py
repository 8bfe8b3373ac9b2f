"""The deployment workflow's search attributes: what the Temporal UI and ``temporal workflow list --query`` find
runs by. One place for their names, the values set at start and the fix when a server lacks them.

Imported by the workflow (through ``imports_passed_through``): temporalio and the models only.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

from contract.models import DeploymentStage, DeployRequest

GIT_SHA = SearchAttributeKey.for_keyword("GitSha")
RESOURCE_GROUP = SearchAttributeKey.for_keyword("ResourceGroup")
SUBSCRIPTION = SearchAttributeKey.for_keyword("Subscription")
TEMPLATE_FILE = SearchAttributeKey.for_keyword("TemplateFile")
DEPLOYMENT_STATE = SearchAttributeKey.for_keyword("DeploymentState")
INITIATOR = SearchAttributeKey.for_keyword("Initiator")

KEYS: tuple[SearchAttributeKey[str], ...] = (
    GIT_SHA,
    RESOURCE_GROUP,
    SUBSCRIPTION,
    TEMPLATE_FILE,
    DEPLOYMENT_STATE,
    INITIATOR,
)
NAMES: tuple[str, ...] = tuple(k.name for k in KEYS)

# Keyword values are limited by the server (2 KB by default); a template path never comes near, but be safe.
_MAX_KEYWORD = 1000


def register_commands(namespace: str = "default") -> str:
    """The Temporal CLI commands that register the attributes (docs/OPERATIONS.md, deploy/temporal/register.sh)."""
    names = " ".join(NAMES)
    return (
        f"for a in {names}; do temporal operator search-attribute create --namespace {namespace} "
        '--name "$a" --type Keyword; done'
    )


def missing_attributes_message(namespace: str = "default", *, what: str = "") -> str:
    """What to tell a user whose server does not know the attributes: the fix, by name."""
    lead = f"{what}: " if what else ""
    return (
        f"{lead}the Temporal server's namespace '{namespace}' has not registered the deployment search attributes "
        f"({', '.join(NAMES)}). Register them once with `{register_commands(namespace)}` (docs/OPERATIONS.md); "
        "the embedded default (`starter.py dev`) registers them itself."
    )


def is_missing_attribute_error(message: str) -> bool:
    """Does a server error say that one of our search attributes is not registered?"""
    text = message.lower()
    if "no mapping defined for search attribute" in text:
        return True
    return "search attribute" in text and any(name.lower() in text for name in NAMES)


def _keyword(value: str | None) -> str:
    return (value or "")[:_MAX_KEYWORD]


def start_search_attributes(request: DeployRequest) -> TypedSearchAttributes:
    """The attributes a deployment starts with; DeploymentState then follows every transition (the workflow
    upserts it)."""
    pairs = [
        SearchAttributePair(RESOURCE_GROUP, _keyword(request.resource_group)),
        SearchAttributePair(SUBSCRIPTION, _keyword(request.subscription_id)),
        SearchAttributePair(TEMPLATE_FILE, _keyword(request.template_path or request.template.digest)),
        SearchAttributePair(DEPLOYMENT_STATE, DeploymentStage.INITIALIZED.value),
        SearchAttributePair(INITIATOR, _keyword(request.initiator)),
    ]
    if request.git_sha:
        pairs.insert(0, SearchAttributePair(GIT_SHA, _keyword(request.git_sha)))
    return TypedSearchAttributes(pairs)
