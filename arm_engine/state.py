"""How the engine asks about the world outside the template: resource state and deployment of resources.

The engine does no I/O. reference(), list*() and `existing` resources are answered by a ``ResourceStateView``
that the caller supplies (the local ARM hands in its database; an offline ``expand`` hands in nothing, and those
values come back ``Deferred``). The local ARM's deploy additionally hands in a ``ResourceDeployer``: the engine
then walks the resources in deployment order and calls it for each one as soon as its inputs are known, so that
reference() of an earlier resource sees what was just deployed — as Azure does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .model import ExpandedResource


class ResourceStateView(Protocol):
    def get_resource(self, resource_id: str, api_version: str | None = None) -> dict[str, Any] | None:
        """The resource as ARM's GET returns it (id, name, type, location, properties, ...), or None."""
        ...

    def list_call(self, resource_id: str, function: str, api_version: str, body: Any) -> Any:
        """The answer of a list* action (listKeys, listSecrets, ...) on a resource; ``function`` as written."""
        ...


class ResourceDeployer(Protocol):
    def deploy(self, resource: ExpandedResource) -> dict[str, Any]:
        """Create or update one resource; return its payload as a GET would. Exceptions propagate unchanged."""
        ...
