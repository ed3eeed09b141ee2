# Defaults for the local stack and the services; every one can be overridden from the
# environment. Ports are chosen away from the usual 9092/5432/6379 so that they do not
# clash with servers already on the machine.
: "${BG_STACK_DIR:=$ROOT/.stack}"
: "${BG_KAFKA_VERSION:=3.9.1}"
: "${BG_KAFKA_PORT:=19092}"
: "${BG_KAFKA_CONTROLLER_PORT:=19093}"
: "${BG_KAFKA_HEAP:=768m}"
: "${BG_PG_PORT:=15432}"
: "${BG_PG_USER:=bg}"
: "${BG_PG_PASSWORD:=bg}"
: "${BG_PG_DB:=buyinggroups}"
: "${BG_REDIS_PORT:=16379}"
: "${BG_INGEST_PORT:=8081}"
: "${BG_API_PORT:=8082}"
export BG_STACK_DIR BG_KAFKA_VERSION BG_KAFKA_PORT BG_KAFKA_CONTROLLER_PORT BG_KAFKA_HEAP \
  BG_PG_PORT BG_PG_USER BG_PG_PASSWORD BG_PG_DB BG_REDIS_PORT BG_INGEST_PORT BG_API_PORT
# What the Python services read (shared/settings.py), derived unless already set.
: "${KAFKA_BOOTSTRAP_SERVERS:=127.0.0.1:$BG_KAFKA_PORT}"
: "${DATABASE_URL:=postgresql+asyncpg://$BG_PG_USER:$BG_PG_PASSWORD@127.0.0.1:$BG_PG_PORT/$BG_PG_DB}"
: "${REDIS_URL:=redis://127.0.0.1:$BG_REDIS_PORT/0}"
export KAFKA_BOOTSTRAP_SERVERS DATABASE_URL REDIS_URL
