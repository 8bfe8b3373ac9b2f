"""Values the engine cannot know before deployment."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Deferred:
    """A value that exists only once a resource has been deployed (reference(), list*(), a module's outputs).

    The engine reports such values as deferred rather than guessing. ``expression`` is the template text that
    will produce the value (shown to users, e.g. in a what-if plan); any function applied to a Deferred value
    yields a Deferred value.
    """

    expression: str
    reason: str = ""

    def __str__(self) -> str:
        return self.expression
