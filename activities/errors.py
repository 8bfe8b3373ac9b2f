"""Turning any failure an activity meets into a classified ``ApplicationError`` (the workflow reads its type)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from temporalio.exceptions import ApplicationError

from contract.models import Classification
from services.classification import classify_failure
from services.secrets import redact


def application_error(classification: Classification) -> ApplicationError:
    """The failure the workflow reads: the classification (class, code, message, ARM's Retry-After) is the first
    detail (``Classification.attached`` reads it); the type names class and code (``LOGIC.InvalidTemplate``) for
    people reading history. Temporal never retries it itself: the workflow owns retries, one activity execution
    per attempt (``contract/retry.py``), so every attempt and its classification is an event in history."""
    return ApplicationError(
        f"{classification.code}: {classification.message}",
        classification,
        type=classification.error_type,
        non_retryable=True,
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
