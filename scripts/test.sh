#!/usr/bin/env bash
# The whole test suite on a fresh virtual environment: the README's second command and CI's.
# Builds the Rust extension, fetches the test fixtures (real trained models shipped inside
# registry packages) with pip, then runs the Rust tests and lints, the Python lints, the
# type check (strict mypy on the package), the type-stub check, the Python tests with the
# native planner, and the planner tests again with the native module hidden (the
# pure-Python fallback that Android uses).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv --clear .venv
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
python -m pip install -q --upgrade pip
python -m pip install -q ".[test]"
# Ray Serve (serve --ray) is optional: where it has no wheel, tests/test_ray.py skips and says why
python -m pip install -q ".[ray]" || echo "== ray[serve] could not be installed here: the Ray tests will be skipped"
python tests/fixtures/fetch.py

echo "== rust: fmt, clippy, tests"
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace --quiet

echo "== python: ruff, mypy, stubs"
ruff check python tests benches
ruff format --check python tests benches
python -m mypy python/jointdnn_edge
python -m mypy.stubtest jointdnn_edge._core

echo "== pytest (native planner)"
# Run from tests/ so that the installed package, not the source tree, is imported.
(cd tests && python -m pytest -q -p no:cacheprovider .)

echo "== pytest (pure-Python planner, native module hidden)"
(cd tests && JOINTDNN_EDGE_PURE=1 python -m pytest -q -p no:cacheprovider -m pure .)
