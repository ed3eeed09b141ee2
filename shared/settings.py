"""Connection settings from the environment (pydantic-settings), shared by every service.

The same names work against the local stack (deploy/env.sh sets them) and against an
existing Kafka cluster, a managed PostgreSQL and Redis in production.
"""

from __future__ import annotations

import ssl
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff


class KafkaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:19092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    topic_partitions: int = Field(4, ge=1, description="partitions of every topic the project creates")
    replication_factor: int = Field(1, ge=1)

    def ssl_context(self) -> ssl.SSLContext | None:
        if "SSL" not in self.security_protocol:
            return None
        ctx = ssl.create_default_context(cafile=self.ssl_cafile)
        if self.ssl_certfile:
            ctx.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        return ctx

    def aiokafka_kwargs(self) -> dict:
        """Connection keyword arguments for aiokafka producers, consumers and admin clients."""
        kwargs: dict = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            kwargs.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.sasl_username,
                sasl_plain_password=self.sasl_password,
            )
        if ctx := self.ssl_context():
            kwargs["ssl_context"] = ctx
        return kwargs


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    database_url: str = "postgresql+asyncpg://bg:bg@127.0.0.1:15432/buyinggroups"


class RedisSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    redis_url: str = "redis://127.0.0.1:16379/0"

    def client(self) -> Redis:
        """The asyncio client every service uses, one per process.

        `Redis.from_url` alone retries nothing (its connections get `Retry(NoBackoff(), 0)`):
        after Redis restarts, or a proxy between drops the connections, each pooled connection
        fails its next command once with "Connection closed by server", and ingest answered 503
        to a request Redis could have served. Three retries with jittered backoff (50 ms up to
        1 s) reconnect a dead pooled connection and give a restarting Redis about 2 s; a longer
        outage still fails fast enough for a 503 within the platforms' timeouts.
        """
        return Redis.from_url(self.redis_url, retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), 3))


@lru_cache
def kafka_settings() -> KafkaSettings:
    return KafkaSettings()


class WorkerSettings(BaseSettings):
    """The faust workers' (grouping, scoring) own settings, `BG_` + the field name.

    Read when a worker is wired (shared.streaming.make_app), so a wrong value stops it at the
    start with pydantic's message naming the variable, not later inside a stream.
    """

    model_config = SettingsConfigDict(env_prefix="BG_", extra="ignore")

    state_dir: Path = Field(Path(".stack/state"), description="faust workers' local table state (a directory per "
                            "namespace and service); the Metrica importer keeps its state file there too")
    table_store: Literal["memory://", "rocksdb://"] = Field(
        "memory://", description="faust table store of grouping and scoring: `rocksdb://` keeps state on disk under "
        "BG_STATE_DIR with a bounded cache (shared/table_store.py); set it for a large market")
    state_cache_entries: int = Field(
        50_000, ge=1, description="decoded states kept per cache in grouping and scoring; with `rocksdb://` it bounds "
        "a worker's memory (about 5 KiB each in grouping, docs/benchmarks.md)")
    stall_seconds: float = Field(
        60.0, gt=0, description="a stream partition with records waiting, nothing in flight and its head (the "
        "committed offset, or the first offset of a partition never committed) unmoved this long is read again from "
        "there (shared/liveness.py)")
    table_standby_replicas: int = Field(
        0, ge=0, description="standby copies of each table partition of grouping and scoring, kept current on other "
        "workers by reading its changelog (faust's default is 1): a worker that takes a partition over finds its table "
        "ready instead of reading the changelog, but every changelog record is then read again and held by a second "
        "worker, which made two workers cost more CPU per event than one (docs/benchmarks.md)")
    faust_web: bool = Field(False, description="`1` turns on faust's web server (metrics, tables)")
    faust_web_port: int = Field(6066, ge=1, le=65535, description="port of faust's web server")
    worker_id: str | None = Field(None, description="static Kafka group membership id of a worker (restarts without "
                                  "a rebalance); each worker of a service needs its own")


class Deployment(BaseSettings):
    """BG_ENV: `production` (the default) or `development`.

    Development defaults (API keys, tokens, webhook secrets known to everyone who read this
    repository) make the local demo and the tests work out of the box. They are accepted only
    when BG_ENV=development says so; in production a service refuses to start with any of them
    (require_production_secrets), and the web pages never open without a token.
    """

    model_config = SettingsConfigDict(extra="ignore")

    bg_env: Literal["production", "development"] = "production"


def development_mode() -> bool:
    """True only when BG_ENV=development is set explicitly."""
    return Deployment().bg_env == "development"


class DevelopmentSecretsError(RuntimeError):
    """A service was started outside development mode with development secrets."""


def require_production_secrets(service: str, in_use: list[str]) -> None:
    """Refuse to start (DevelopmentSecretsError naming the settings) when development defaults
    are in use and BG_ENV is not `development`. `in_use`: the names of the settings that still
    hold a development default, e.g. ["INGEST_API_KEYS", "INGEST_ZOOM_SECRET_TOKEN"]."""
    if in_use and not development_mode():
        raise DevelopmentSecretsError(
            f"{service}: {', '.join(in_use)} still hold development defaults; set them (see README, "
            "Configuration), or set BG_ENV=development for a local run")
