#!/usr/bin/env bash
# CI for the end-to-end tests: build the toolchain (or reuse the cached one), install
# mlops-infra with the test and kubernetes extras, then run tests/e2e against a local
# control plane. Unlike a developer run, a missing toolchain fails here instead of skipping.
# Usage: toolchain/ci.sh [extra pytest arguments]     (VENV=dir picks the virtualenv, default .venv)
set -euo pipefail
cd "$(dirname "$0")/.."

start=$SECONDS
bash toolchain/build.sh
echo "toolchain ready in $((SECONDS - start))s"

venv=${VENV:-.venv}
[ -x "$venv/bin/python" ] || python3.11 -m venv "$venv"
"$venv/bin/pip" install -q -e '.[test,kubernetes]'

start=$SECONDS
MLOPS_INFRA_E2E_REQUIRED=1 "$venv/bin/python" -m pytest -q -m e2e -rs tests/e2e "$@"
echo "e2e tests ran in $((SECONDS - start))s"
