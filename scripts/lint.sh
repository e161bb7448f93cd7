#!/usr/bin/env bash
# The fast lane: lint, format and type checks. Runs in seconds, before any suite with real processes.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== ruff"
python3 -m ruff check .
python3 -m ruff format --check .
echo "== mypy"
python3 -m mypy jupyterlab_accel kernel_gateway/accel_gateway
echo "== frontend: eslint, prettier, tsc --noEmit, jest"
if [ -d node_modules ]; then
  jlpm run lint:check
  jlpm run test --silent
else
  echo "node_modules missing: run jlpm install first" >&2
  exit 1
fi
