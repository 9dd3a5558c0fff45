"""Settings profiles for harness runs: bounded for CI, deep on demand.

from crdtedge.testing.profiles import load_profile
load_profile()    # HYPOTHESIS_PROFILE=crdtedge-deep for long runs
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

CI = "crdtedge-ci"
DEEP = "crdtedge-deep"

_QUIET = settings(
    deadline=None,  # file I/O and pycrdt make per-example timings noisy
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(CI, _QUIET, max_examples=25, stateful_step_count=30)
settings.register_profile(DEEP, _QUIET, max_examples=1000, stateful_step_count=80)


def load_profile(default: str = CI) -> None:
    """Load the profile named by $HYPOTHESIS_PROFILE (if it is ours), else `default`."""
    requested = os.environ.get("HYPOTHESIS_PROFILE", default)
    settings.load_profile(requested if requested in (CI, DEEP) else default)
