#!/usr/bin/env bash
# Start the relay with embedded defaults (a local ./data directory, no external services),
# installing crdtedge and its server into ./.venv first if needed. Extra arguments go to
# `crdtedge serve` (see `crdtedge serve --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/crdtedge ] || ! .venv/bin/python -c "import crdtedge_server" 2>/dev/null; then
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e . -e ./server
fi
exec .venv/bin/crdtedge serve --host 127.0.0.1 --port 8765 --data-dir ./data "$@"
