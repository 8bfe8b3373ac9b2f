"""Turning any failure an activity meets into a classified ``ApplicationError`` (the workflow reads its type)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from temporalio.exceptions import ApplicationError

from contract.models import Classification, FailureClass
from services.classification import classify_failure
from services.secrets import redact


def application_error(classification: Classification) -> ApplicationError:
    """LOGIC → non-retryable; ENVIRONMENTAL → retryable with ARM's Retry-After as ``next_retry_delay``.

    The type names the class and the code (``LOGIC.InvalidTemplate``); the classification is the first detail.
    """
    retry_after = classification.retry_after_seconds
    return ApplicationError(
        f"{classification.code}: {classification.message}",
        classification,
        type=classification.error_type,
        non_retryable=classification.failure_class is FailureClass.LOGIC,
        next_retry_delay=timedelta(seconds=retry_after) if retry_after else None,
    )


@asynccontextmanager
async def classified(secrets: list[str] | None = None) -> AsyncIterator[None]:
    """Re-raise every failure inside as a classified ApplicationError; cancellation passes through.

    ``secrets`` (the request's secure parameter values) are scrubbed from the message, which enters history.
    The original exception is not chained: its text could carry the same values.
    """
    try:
        yield
    except (asyncio.CancelledError, ApplicationError):
        raise
    except Exception as exc:
        classification = classify_failure(exc)
        if secrets:
            classification.message = redact(classification.message, secrets)
            raise application_error(classification) from None
        raise application_error(classification) from exc
