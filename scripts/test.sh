#!/usr/bin/env bash
# The whole test suite: gateway, server extension, mounts, browser. Real processes on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 -m pytest -q -p no:cacheprovider -rs "$@"
