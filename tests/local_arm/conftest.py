from __future__ import annotations

from local_arm.testing import local_arm_fixture

# A fresh server per test (fast settings: Retry-After 0, instant provisioning); see local_arm/testing.py.
local_arm = local_arm_fixture()
