"""The local ARM: an HTTPS Azure Resource Manager on loopback that the real Azure SDK clients drive unchanged.

A separate wing: it imports the template engine (``arm_engine``) and nothing of the orchestrator; the orchestrator
reaches it only over HTTPS. See docs/LOCAL_ARM.md.
"""

from __future__ import annotations

from .config import LocalArmConfig
from .credential import AsyncLocalArmCredential, LocalArmCredential
from .server import LocalArmServer

__all__ = ["AsyncLocalArmCredential", "LocalArmConfig", "LocalArmCredential", "LocalArmServer"]
