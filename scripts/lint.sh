#!/usr/bin/env bash
# The fast lane: lint, format and type checks. Runs in seconds, before any suite with real processes.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== ruff"
python3 -m ruff check .
python3 -m ruff format --check .
