"""This folder's fixtures: the API stack from ``tests.support.api_env``."""

from tests.support.api_env import api_stack  # noqa: F401
