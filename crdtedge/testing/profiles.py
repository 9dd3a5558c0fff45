"""Settings profiles for harness runs: bounded for CI, deep on demand.

from crdtedge.testing.profiles import load_profile
load_profile()    # HYPOTHESIS_PROFILE=crdtedge-deep for long runs
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

CI = "crdtedge-ci"
DEEP = "crdtedge-deep"

settings.register_profile(
    CI,
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    DEEP,
    max_examples=1000,
    stateful_step_count=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def load_profile(default: str = CI) -> None:
    """Load the profile named by $HYPOTHESIS_PROFILE (if it is ours), else `default`."""
    requested = os.environ.get("HYPOTHESIS_PROFILE", default)
    settings.load_profile(requested if requested in (CI, DEEP) else default)
