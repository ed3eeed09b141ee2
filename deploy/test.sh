#!/usr/bin/env bash
# All tests against the real servers: installs what is missing, brings the local stack up,
# runs pytest (unit, component, end-to-end). Extra arguments go to pytest.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$ROOT/deploy/stack.sh" up
cd "$ROOT"
rm -rf tests/artifacts
set +e
.venv/bin/pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$rc"
