"""ARM's error shape, one place: ``{"error": {code, message, target, details, additionalInfo}}``."""

from __future__ import annotations

from typing import Any


class ArmError(Exception):
    """An error answer: raised anywhere in request handling, rendered by the server in ARM's exact shape."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        target: str | None = None,
        details: list[dict[str, Any]] | None = None,
        additional_info: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.details = details or []
        self.additional_info = additional_info or []
        self.headers = headers or {}

    def error_object(self) -> dict[str, Any]:
        return error_object(
            self.code, self.message, target=self.target, details=self.details, additional_info=self.additional_info
        )

    def body(self) -> dict[str, Any]:
        return {"error": self.error_object()}


def error_object(
    code: str,
    message: str,
    *,
    target: str | None = None,
    details: list[dict[str, Any]] | None = None,
    additional_info: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    obj: dict[str, Any] = {"code": code, "message": message}
    if target is not None:
        obj["target"] = target
    if details:
        obj["details"] = details
    if additional_info:
        obj["additionalInfo"] = additional_info
    return obj


DEPLOYMENT_FAILED_MESSAGE = (
    "At least one resource deployment operation failed. Please list deployment operations for details. "
    "Please see https://aka.ms/arm-deployment-operations for usage details."
)


def not_found_resource_group(name: str) -> ArmError:
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found.")


def not_found_resource(resource_type: str, name: str, resource_group: str) -> ArmError:
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{resource_type}/{name}' under resource group '{resource_group}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def deployment_not_found(name: str) -> ArmError:
    return ArmError(404, "DeploymentNotFound", f"Deployment '{name}' could not be found.")


def invalid_request_content(reason: str) -> ArmError:
    return ArmError(
        400, "InvalidRequestContent", f"The request content was invalid and could not be deserialized: '{reason}'."
    )
