#!/usr/bin/env bash
# All tests against the real servers: installs what is missing, brings the local stack up,
# runs pytest (unit, component, end-to-end). Extra arguments go to pytest.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$ROOT/deploy/stack.sh" up
# The browser test drives Debian's Chromium (no browser download is possible here).
if ! command -v chromium >/dev/null; then
  echo "[test] installing Debian's chromium for the browser test" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi
  $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
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
