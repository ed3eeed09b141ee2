#!/usr/bin/env bash
# The main job: install what is missing, bring up the local stack (Kafka, PostgreSQL, Redis),
# start the services, send the DOMAIN.md stories through the ingest API in the platforms' own
# formats, print the alerts as they fire and the top opportunities with their buying groups.
# The APIs stay up afterwards.   bash deploy/demo.sh stop   stops everything.
set -euo pipefail
# The demo posts with the development keys: development mode, said explicitly (README).
export BG_ENV="${BG_ENV:-development}"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ "${1:-}" = stop ]; then
  bash "$ROOT/deploy/services.sh" stop
  bash "$ROOT/deploy/stack.sh" down
  exit 0
fi
bash "$ROOT/deploy/stack.sh" up
bash "$ROOT/deploy/services.sh" start
cd "$ROOT"
exec .venv/bin/python -m demo "$@"
