#!/usr/bin/env bash
# Install with the test extras (tools/install.sh test), then run the whole test suite from the
# repository root. Arguments go to pytest, e.g.
#
#   bash tools/test.sh                          # everything (GUI tests under pytest-xvfb)
#   bash tools/test.sh tests/filters -k gauss   # a subset
#   bash tools/test.sh -m "not slow"            # skip the slow ones
#
# The exit status is pytest's own (0 all passed, 1 failures, 5 nothing collected, ...).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

bash "$ROOT/tools/install.sh" test

cd "$ROOT"
echo "[test] .venv/bin/python -m pytest $*"
exec "$ROOT/.venv/bin/python" -m pytest "$@"
