"""Shared test configuration: hypothesis profiles.

Pick a profile with the HYPOTHESIS_PROFILE environment variable:

- ``dev`` (default): quick local runs.
- ``ci``: what CI runs; bounded so the whole suite stays fast.
- ``deep``: long soak runs, e.g. ``HYPOTHESIS_PROFILE=deep pytest tests/log``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = settings(
    deadline=None,  # file I/O and pycrdt replay make per-example timings noisy
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,  # failures print a @reproduce_failure blob
)

settings.register_profile("dev", _COMMON, max_examples=40)
settings.register_profile("ci", _COMMON, max_examples=50, derandomize=False)
settings.register_profile("deep", _COMMON, max_examples=2000)

settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
