#!/usr/bin/env bash
# The test command: installs everything the suite needs into ./.venv, then runs the
# linters, the type checker and the test suite. Works on a fresh machine with Python 3.11+.
# HYPOTHESIS_PROFILE=deep bash scripts/test.sh runs the property tests much longer.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"

echo "== ruff"
.venv/bin/ruff check crdtedge tests benchmarks examples
.venv/bin/ruff format --check crdtedge tests benchmarks examples
echo "== mypy --strict"
.venv/bin/mypy --strict crdtedge
echo "== pytest"
HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-ci}" .venv/bin/python -m pytest "$@"
