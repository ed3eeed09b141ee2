#!/usr/bin/env bash
# The local stack: Apache Kafka (KRaft, jars from Maven Central), PostgreSQL 15 and
# Redis 7 from Debian's packages, each with data and logs under $BG_STACK_DIR.
#   deploy/stack.sh install   install what is missing (apt, Python lockfile, Kafka jars)
#   deploy/stack.sh up        install, start every server, wait until each answers, create topics
#   deploy/stack.sh down      stop every server (data is kept)
#   deploy/stack.sh status    one line per server
#   deploy/stack.sh reset     stop and delete all data
#   deploy/stack.sh restart kafka|postgresql|redis ...   one server down and up, data kept
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=deploy/env.sh
source "$ROOT/deploy/env.sh"

KAFKA_DIR="$BG_STACK_DIR/kafka"
# The broker's jars; BG_KAFKA_LIBS lets a second stack (a test's own broker) share them.
KAFKA_LIBS="${BG_KAFKA_LIBS:-$KAFKA_DIR/libs}"
REDIS_DIR="$BG_STACK_DIR/redis"
PY="$ROOT/.venv/bin/python"

log() { printf '\033[1m[stack]\033[0m %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

need_apt() {
  local missing=()
  [ -x "$(pg_bin)/postgres" ] || missing+=(postgresql-15)
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  command -v curl >/dev/null || missing+=(curl)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing from Debian: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  # Debian starts its own clusters on install; ours use other ports and directories.
}

pg_bin() {
  local d
  for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    [ -x "$d/postgres" ] && { echo "$d"; return; }
  done
  echo /usr/lib/postgresql/15/bin
}

install_python() {
  if ! command -v uv >/dev/null; then
    log "installing uv (Python package manager) from PyPI"
    python3 -m pip install -q --disable-pip-version-check uv
  fi
  log "Python packages from uv.lock"
  (cd "$ROOT" && uv sync --frozen --quiet --python python3.11)
}

install_kafka() {
  if [ ! -f "$KAFKA_LIBS/.complete-$BG_KAFKA_VERSION" ]; then
    log "fetching Kafka $BG_KAFKA_VERSION jars with Maven"
    rm -rf "$KAFKA_LIBS"
    mvn -q -B -f "$ROOT/deploy/kafka/pom.xml" -Dkafka.version="$BG_KAFKA_VERSION" \
      -Dkafka.libs="$KAFKA_LIBS" dependency:copy-dependencies
    touch "$KAFKA_LIBS/.complete-$BG_KAFKA_VERSION"
  fi
}

cmd_install() {
  mkdir -p "$BG_STACK_DIR"
  need_apt
  # A second stack (bench/chaos.py's own) runs from the project's environment: syncing it
  # there would remove packages the environment holds beyond this checkout's lockfile.
  [ -n "${BG_STACK_SKIP_PYTHON:-}" ] || install_python
  install_kafka
}

# ---------------------------------------------------------------- PostgreSQL
# initdb and postgres refuse to run as root: as root they run as the postgres user, whose
# data directory must be reachable by it (a clone under /root is not), hence PG_DIR.
pg_dir() {
  if [ "$(id -u)" != 0 ]; then echo "$BG_STACK_DIR/postgres"; return; fi
  mkdir -p "$BG_STACK_DIR"
  if runuser -u postgres -- test -x "$BG_STACK_DIR" 2>/dev/null; then
    echo "$BG_STACK_DIR/postgres"
  else
    echo "/var/lib/buyinggroups/$(echo -n "$BG_STACK_DIR" | md5sum | cut -c1-12)/postgres"
  fi
}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

pg_up() {
  local dir bin; dir=$(pg_dir); bin=$(pg_bin)
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    log "initialising PostgreSQL in $dir"
    mkdir -p "$dir/data" "$dir/run"
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$dir"
    local pw; pw=$(mktemp); echo "$BG_PG_PASSWORD" > "$pw"; chmod 644 "$pw"
    as_pg "$bin/initdb" -D "$dir/data" -U "$BG_PG_USER" --pwfile="$pw" \
      --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pw"
  fi
  if as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    log "PostgreSQL already running on $BG_PG_PORT"
  else
    log "starting PostgreSQL on 127.0.0.1:$BG_PG_PORT"
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start \
      -o "-p $BG_PG_PORT -c listen_addresses=127.0.0.1 -k $dir/run -c fsync=off -c max_connections=200" >/dev/null \
      || die "PostgreSQL did not start; see $dir/postgres.log"
  fi
  local db
  for db in "$BG_PG_DB" "${BG_PG_DB}_test"; do
    if ! as_pg "$bin/psql" -h "$dir/run" -p "$BG_PG_PORT" -U "$BG_PG_USER" -d postgres -tAc \
        "select 1 from pg_database where datname='$db'" | grep -q 1; then
      as_pg "$bin/createdb" -h "$dir/run" -p "$BG_PG_PORT" -U "$BG_PG_USER" "$db"
    fi
  done
}
pg_down() {
  local dir; dir=$(pg_dir)
  [ -f "$dir/data/PG_VERSION" ] && as_pg "$(pg_bin)/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
}
pg_status() {
  local dir; dir=$(pg_dir)
  as_pg "$(pg_bin)/pg_isready" -h 127.0.0.1 -p "$BG_PG_PORT" -q 2>/dev/null \
    && echo "postgresql  up    127.0.0.1:$BG_PG_PORT  data=$dir" \
    || echo "postgresql  down  127.0.0.1:$BG_PG_PORT"
}

# ---------------------------------------------------------------- Redis
redis_up() {
  mkdir -p "$REDIS_DIR"
  if redis-cli -p "$BG_REDIS_PORT" ping >/dev/null 2>&1; then
    log "Redis already running on $BG_REDIS_PORT"; return
  fi
  log "starting Redis on 127.0.0.1:$BG_REDIS_PORT"
  redis-server --bind 127.0.0.1 --port "$BG_REDIS_PORT" --dir "$REDIS_DIR" \
    --daemonize yes --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" \
    --appendonly yes --save "" >/dev/null
  for _ in $(seq 50); do redis-cli -p "$BG_REDIS_PORT" ping >/dev/null 2>&1 && return; sleep 0.2; done
  die "Redis did not answer; see $REDIS_DIR/redis.log"
}
redis_down() { redis-cli -p "$BG_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true; }
redis_status() {
  redis-cli -p "$BG_REDIS_PORT" ping >/dev/null 2>&1 \
    && echo "redis       up    127.0.0.1:$BG_REDIS_PORT" || echo "redis       down  127.0.0.1:$BG_REDIS_PORT"
}

# ---------------------------------------------------------------- Kafka
kafka_pid() { [ -f "$KAFKA_DIR/kafka.pid" ] && kill -0 "$(cat "$KAFKA_DIR/kafka.pid")" 2>/dev/null && cat "$KAFKA_DIR/kafka.pid"; }
KAFKA_JVM=(-Xmx"$BG_KAFKA_HEAP" -Xms"$BG_KAFKA_HEAP" -XX:+UseG1GC
  -Dlog4j.configuration="file:$KAFKA_DIR/log4j.properties" -Dkafka.logs.dir="$KAFKA_DIR/logs"
  -cp "$KAFKA_LIBS/*")
kafka_java() { java "${KAFKA_JVM[@]}" "$@"; }
kafka_up() {
  install_kafka
  if kafka_pid >/dev/null; then log "Kafka already running on $BG_KAFKA_PORT"; else
    mkdir -p "$KAFKA_DIR/logs" "$KAFKA_DIR/data"
    sed -e "s#@DATA@#$KAFKA_DIR/data#" -e "s#@PORT@#$BG_KAFKA_PORT#g" \
        -e "s#@CONTROLLER_PORT@#$BG_KAFKA_CONTROLLER_PORT#g" \
        "$ROOT/deploy/kafka/server.properties" > "$KAFKA_DIR/server.properties"
    sed -e "s#@LOGS@#$KAFKA_DIR/logs#" "$ROOT/deploy/kafka/log4j.properties" > "$KAFKA_DIR/log4j.properties"
    if [ ! -f "$KAFKA_DIR/data/meta.properties" ]; then
      log "formatting Kafka storage (KRaft)"
      local cid; cid=$(kafka_java kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
      kafka_java kafka.tools.StorageTool format -t "$cid" -c "$KAFKA_DIR/server.properties" >/dev/null
    fi
    log "starting Kafka $BG_KAFKA_VERSION on 127.0.0.1:$BG_KAFKA_PORT"
    # nohup execs java, so $! is the broker's own pid (what `down` must signal).
    nohup java "${KAFKA_JVM[@]}" kafka.Kafka "$KAFKA_DIR/server.properties" > "$KAFKA_DIR/logs/stdout.log" 2>&1 &
    echo $! > "$KAFKA_DIR/kafka.pid"
  fi
  log "creating topics and waiting for Kafka to answer"
  "$PY" -m shared.topics ensure --wait 90 || die "Kafka did not answer; see $KAFKA_DIR/logs/"
}
kafka_down() {
  local pid; pid=$(kafka_pid) || return 0
  # SIGTERM is a controlled shutdown (producer state snapshots written, logs closed); under
  # load on a busy machine it took up to 24 s, so SIGKILL only after 120 s, and said so.
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 240); do kill -0 "$pid" 2>/dev/null || { rm -f "$KAFKA_DIR/kafka.pid"; return 0; }; sleep 0.5; done
  log "Kafka did not stop in 120 s; killing it (it recovers its logs on the next start)"
  kill -9 "$pid" 2>/dev/null || true; rm -f "$KAFKA_DIR/kafka.pid"
}
kafka_status() {
  kafka_pid >/dev/null && echo "kafka       up    127.0.0.1:$BG_KAFKA_PORT  pid=$(kafka_pid)" \
    || echo "kafka       down  127.0.0.1:$BG_KAFKA_PORT"
}

case "${1:-}" in
  install) cmd_install ;;
  up) cmd_install; pg_up; redis_up; kafka_up; log "stack is up"; kafka_status; pg_status; redis_status ;;
  down) kafka_down; redis_down; pg_down; log "stack is down" ;;
  status) kafka_status; pg_status; redis_status ;;
  reset) kafka_down; redis_down; pg_down; rm -rf "$BG_STACK_DIR" "$(pg_dir)"; log "stack data deleted" ;;
  # One server down and up again, data kept (bench/chaos.py restarts them under load).
  restart) for server in "${@:2}"; do
             case "$server" in
               kafka) kafka_down; kafka_up ;;
               postgresql) pg_down; pg_up ;;
               redis) redis_down; redis_up ;;
               *) echo "usage: $0 restart kafka|postgresql|redis ..." >&2; exit 2 ;;
             esac
           done ;;
  *) echo "usage: $0 install|up|down|status|reset|restart SERVER..." >&2; exit 2 ;;
esac
