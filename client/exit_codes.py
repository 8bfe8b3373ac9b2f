"""Exit codes of every command, one place. Documented in the README."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    LOGIC_FAILURE = 1  # the template, parameters or plan is wrong: fix the input; retrying will not help
    USAGE = 2  # bad command line or unreadable input file
    # Azure/Temporal/network trouble that outlasted the retries (5, 10, 20, 40, 80 s; for VERIFYING_HEALTH its
    # convergence window, services.classification.RETRIED_WITHIN_STAGE)
    ENVIRONMENTAL = 3
    REJECTED = 4  # a destructive plan was rejected, or not confirmed in time
    ROLLED_BACK = 5  # the deployment failed and --rollback-on-failure redeployed the last healthy one
    CHANGES = 6  # `rollout plan`: the what-if of at least one target changes something (0: nothing changes)
    DRIFT = 7  # `drift status`: the latest check found configuration or destructive drift
