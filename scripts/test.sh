#!/usr/bin/env bash
# `make test`: from nothing to a verdict. Installs what is missing, starts the stack if
# it is not running, runs lint, unit and integration tests, and stops what it started.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. infra/lib.sh

scripts/bootstrap.sh || exit 1
infra/stack.sh install || exit 1

started=
if ! infra/stack.sh status >/dev/null 2>&1; then
  started=1
  infra/stack.sh up || { infra/stack.sh down; exit 1; }
fi

rc=0
info "lint"
make --no-print-directory lint || rc=1
info "kubernetes manifests"
scripts/k8s_check.sh || rc=1
info "unit and integration tests"
# The services' own byte code (1 s): each test spawns dozens of service processes.
.venv/bin/python -m compileall -q -j 0 services clients tests >/dev/null || rc=1
.venv/bin/python -m pytest --durations=40 services infra/model-server/tests infra/lag-exporter/tests tests || rc=1

if [ -n "$started" ]; then infra/stack.sh down; fi
exit $rc
