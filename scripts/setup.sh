#!/usr/bin/env bash
# Install everything jupyterlab-accel needs on a fresh Debian machine, then the project itself
# (editable), its gateway and the built labextension. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: Chromium for browser tests, FUSE for Mount drive, sshd and SLURM for the
# SSH and cluster providers' tests.
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    need=()
    for pkg in chromium fuse3 openssh-server slurm-wlm munge; do
        dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
    done
    if [ ${#need[@]} -gt 0 ]; then
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
    fi
fi

python3 -m pip install -q --upgrade pip
python3 -m pip install -q wheel 'jupyterlab>=4.6,<5' 'hatchling>=1.21' 'hatch-jupyter-builder>=0.9' \
    'hatch-nodejs-version>=0.3.2' 'jupyter-builder>=1.0' editables
python3 -m pip install -q -e ./kernel_gateway

# The labextension: build it loudly here so a broken build fails setup, not later.
if [ -f labextension/src/index.ts ]; then
    jlpm install
    jlpm build:prod
fi
# A link left by an earlier `labextension develop` (dangling, or pointing into this very checkout's
# build) makes pip's editable install fail on the labextension's files; `develop --overwrite`
# below makes the link again.
link="$(python3 -c 'import sys; print(sys.prefix)')/share/jupyter/labextensions/jupyterlab-accel"
if [ -L "$link" ]; then rm -f "$link"; fi
python3 -m pip install -q --no-build-isolation -e '.[test]'
if [ -f jupyterlab_accel/labextension/package.json ]; then
    jupyter labextension develop --overwrite . >/dev/null
fi
jupyter server extension enable --sys-prefix jupyterlab_accel >/dev/null
