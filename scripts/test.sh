#!/usr/bin/env bash
# The whole test suite: the fast lane (lint, types) first, then gateway, server extension,
# mounts, browser. Real processes on 127.0.0.1. Arguments go to pytest (and skip the fast lane).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then
    bash scripts/lint.sh
    # The whole suite on 2 cores: a timing-bound test that fails is run once more (and both
    # tries are reported); one that fails twice fails the run. --durations shows where time goes.
    set -- --reruns 1 --reruns-delay 2 --durations 25 tests
fi
exec python3 -m pytest -q -p no:cacheprovider -rsR "$@"
