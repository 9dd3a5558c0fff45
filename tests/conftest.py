"""Shared test configuration: hypothesis profiles.

Pick a profile with the HYPOTHESIS_PROFILE environment variable:

- ``dev`` (default): quick local runs.
- ``ci``: what CI runs; bounded so the whole suite stays fast.
- ``deep``: long soak runs, e.g. ``HYPOTHESIS_PROFILE=deep pytest tests/log``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,  # file I/O and pycrdt replay make per-example timings noisy
    "suppress_health_check": [HealthCheck.too_slow],
    "print_blob": True,  # failures print a @reproduce_failure blob
}

settings.register_profile("dev", max_examples=40, **_COMMON)
settings.register_profile("ci", max_examples=60, derandomize=False, **_COMMON)
settings.register_profile("deep", max_examples=2000, **_COMMON)

settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
