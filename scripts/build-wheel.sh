#!/usr/bin/env bash
# Builds the manylinux2014 (glibc 2.17) wheel of the Python package without a container:
# maturin links through zig (PyPI's ziglang) so the wheel needs nothing newer than glibc
# 2.17, then the wheel is installed into a fresh venv and a small run checks it works.
# `make wheel` calls this; the wheel lands in target/wheels/.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check 'maturin>=1.9,<2' ziglang
rm -rf target/wheels
# maturin finds zig as `python -m ziglang` of the interpreter on PATH.
PATH="$PWD/.venv/bin:$PATH" .venv/bin/maturin build --release --strip --zig \
    --compatibility manylinux2014 -i .venv/bin/python -m python/Cargo.toml -o target/wheels
wheel=$(ls target/wheels/phaseflow-*manylinux2014*.whl)

check=$(mktemp -d)
trap 'rm -rf "$check"' EXIT
python3 -m venv "$check/venv"
"$check/venv/bin/pip" install -q --disable-pip-version-check "$wheel"
(cd "$check" && "$check/venv/bin/python" - <<'PY'
import numpy as np
import phaseflow as pf

r = pf.simulate("lorenz", n=100, tspan=(0, 1), dt=0.01, progress=False)
assert r.states.shape == (1, 100, 3) and (r.status == 1).all(), r
print(f"the wheel works: phaseflow {pf.__version__}, {pf.default_engine()!r}")
PY
)
echo "built $wheel"
