"""Shared fixtures: one engine for the whole suite, and the CLI binary the results are
compared with (built by `cargo build --release`, which `make test` does first)."""

import os
import pathlib
import subprocess

import pytest

import phaseflow as pf

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def engine():
    return pf.Engine()


@pytest.fixture(scope="session")
def cli():
    """Runs `phaseflow ARGS...`; returns the completed process (output captured)."""
    binary = pathlib.Path(os.environ.get("PHASEFLOW_BIN", ROOT / "target" / "release" / "phaseflow"))
    if not binary.is_file():
        pytest.fail(f"{binary} is missing: run `cargo build --release` first (make test does)")

    def run(*args, check=True):
        done = subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True)
        if check and done.returncode != 0:
            pytest.fail(f"phaseflow {' '.join(map(str, args))} failed:\n{done.stderr}")
        return done

    return run
