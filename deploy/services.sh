#!/usr/bin/env bash
# The four services as background processes of the local stack, logs and pids under $BG_STACK_DIR.
#   deploy/services.sh start [name...]   start (default: all) and wait until each is ready
#   deploy/services.sh stop [name...]
#   deploy/services.sh status
# Settings come from the environment (see deploy/env.sh and README "Configuration").
set -euo pipefail
# The local stack runs with the development keys and tokens, which the services accept only in
# development mode. Production sets BG_ENV=production and its own secrets (README).
export BG_ENV="${BG_ENV:-development}"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=deploy/env.sh
source "$ROOT/deploy/env.sh"
RUN="$BG_STACK_DIR/run"
LOGS="$BG_STACK_DIR/logs"
ALL=(ingest grouping scoring alerts projection)
mkdir -p "$RUN" "$LOGS"

log() { printf '\033[1m[services]\033[0m %s\n' "$*" >&2; }

# name -> python module arguments and, for HTTP services, the readiness URL.
command_of() {
  case "$1" in
    ingest) echo "-m services.ingest" ;;
    grouping) echo "-m services.grouping" ;;
    scoring) echo "-m services.scoring" ;;
    alerts) echo "-m services.scoring.alerts" ;;
    projection) echo "-m services.projection" ;;
  esac
}
ready_url_of() {
  case "$1" in
    ingest) echo "http://127.0.0.1:$BG_INGEST_PORT/readyz" ;;
    projection) echo "http://127.0.0.1:$BG_API_PORT/readyz" ;;
  esac
}
available() { [ -f "$ROOT/services/${1%%.*}/__main__.py" ] || { [ "$1" = alerts ] && [ -f "$ROOT/services/scoring/alerts/__main__.py" ]; }; }
pid_of() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null && cat "$RUN/$1.pid"; }

start_one() {
  local name=$1
  available "$name" || { log "$name: not built yet, skipped"; return 0; }
  if [ "$name" = alerts ] && [ -z "${BG_ALERTS_WEBHOOK_URL:-}${BG_ALERTS_CONFIG:-}" ]; then
    log "alerts: no webhook configured (set BG_ALERTS_WEBHOOK_URL or BG_ALERTS_CONFIG), not started"
    return 0
  fi
  if pid_of "$name" >/dev/null; then log "$name already running (pid $(pid_of "$name"))"; return 0; fi
  # No subshell: nohup execs python, so $! is the service's own pid (what `stop` must signal).
  cd "$ROOT"
  BG_WORKER_ID="${BG_WORKER_ID:-0}" BG_STATE_DIR="$BG_STACK_DIR/state" nohup "$ROOT/.venv/bin/python" $(command_of "$name") >> "$LOGS/$name.log" 2>&1 &
  echo $! > "$RUN/$name.pid"
  local url; url=$(ready_url_of "$name")
  if [ -n "$url" ]; then
    for _ in $(seq 120); do
      curl -fsS "$url" >/dev/null 2>&1 && { log "$name ready at ${url%/readyz}"; return 0; }
      pid_of "$name" >/dev/null || { log "$name exited; last lines of $LOGS/$name.log:"; tail -20 "$LOGS/$name.log" >&2; return 1; }
      sleep 0.5
    done
    log "$name not ready after 60 s; see $LOGS/$name.log"; return 1
  fi
  sleep 1
  pid_of "$name" >/dev/null || { log "$name exited; last lines of $LOGS/$name.log:"; tail -20 "$LOGS/$name.log" >&2; return 1; }
  log "$name started (pid $(pid_of "$name")), log $LOGS/$name.log"
}

stop_one() {
  local pid; pid=$(pid_of "$1") || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$RUN/$1.pid"; log "$1 stopped"
}

names=("${@:2}"); [ ${#names[@]} -gt 0 ] || names=("${ALL[@]}")
case "${1:-}" in
  start) for n in "${names[@]}"; do start_one "$n"; done ;;
  stop) for n in "${names[@]}"; do stop_one "$n"; done ;;
  status) for n in "${ALL[@]}"; do
            if pid_of "$n" >/dev/null; then echo "$n  up    pid=$(pid_of "$n")"; else echo "$n  down"; fi
          done ;;
  *) echo "usage: $0 start|stop|status [ingest|grouping|scoring|alerts|projection ...]" >&2; exit 2 ;;
esac
