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
.venv/bin/python -m pip install --quiet -e ".[test]" -e ./server
if ! command -v npm >/dev/null; then
    echo "npm is needed for the interop tests with real Yjs peers: install Node.js 20+" >&2
    exit 1
fi
(cd tests/interop && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

echo "== ruff"
.venv/bin/ruff check crdtedge server tests benchmarks examples
.venv/bin/ruff format --check crdtedge server tests benchmarks examples
echo "== mypy --strict"
.venv/bin/mypy --strict crdtedge server/crdtedge_server
echo "== pytest"
HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-ci}" .venv/bin/python -m pytest "$@"
