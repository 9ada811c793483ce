#!/usr/bin/env bash
# Builds the Python package into a venv (.venv, ignored by git) and runs its pytest suite.
# `make test` calls this after the Rust tests. Needs Python >= 3.10 with venv; installs
# python3-venv through apt-get when the venv module is missing and apt-get can.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if ! command -v "$PY" >/dev/null; then
    echo "the Python package's tests need python3 (>= 3.10)" >&2
    exit 1
fi
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    echo "the Python package needs Python >= 3.10; $PY is $("$PY" --version 2>&1)" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    if ! "$PY" -m venv .venv 2>/dev/null; then
        rm -rf .venv
        if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
            ver=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
            apt-get install -y -qq "python$ver-venv" >/dev/null || apt-get install -y -qq python3-venv >/dev/null
            "$PY" -m venv .venv
        else
            echo "python3 has no venv module: install python3-venv" >&2
            exit 1
        fi
    fi
fi
.venv/bin/python -m pip install -q --disable-pip-version-check \
    'maturin>=1.9,<2' numpy pytest xarray scipy safetensors
# Zarr stores and Dask (tests/test_store.py): zarr-python 3 needs Python >= 3.11; on older
# Pythons those tests are skipped.
if .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    .venv/bin/python -m pip install -q --disable-pip-version-check zarr dask distributed
fi
# The build shares target/ with the workspace, so a rebuild only compiles what changed.
.venv/bin/maturin develop --release -q -m python/Cargo.toml
.venv/bin/python -m pytest -q python/tests "$@"
