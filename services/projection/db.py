"""The database engine and the migrations (Alembic, configured in code: no alembic.ini)."""

from __future__ import annotations

from pathlib import Path

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


def create_engine(database_url: str, schema: str, pool_size: int = 5) -> AsyncEngine:
    """Every connection works inside `schema`, so tests and tenants can share one database."""
    return create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        json_serializer=_json,
        connect_args={"server_settings": {"search_path": schema, "application_name": "bg-projection"}},
    )


def alembic_config(schema: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["schema"] = schema
    return config


def _upgrade(connection: Connection, schema: str, revision: str) -> None:
    config = alembic_config(schema)
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def migrate(engine: AsyncEngine, schema: str, revision: str = "head") -> None:
    """Create the schema if needed and upgrade it; safe to run from several processes at once."""
    async with engine.begin() as conn:
        # Two services starting together must not both create the same tables.
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"bg-migrate:{schema}"})
        await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        await conn.execute(text(f'SET LOCAL search_path TO "{schema}"'))
        await conn.run_sync(_upgrade, schema, revision)


async def drop(engine: AsyncEngine, schema: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


async def is_empty(engine: AsyncEngine, schema: str) -> bool:
    """True when no projection table of `schema` holds a row (or the schema does not exist)."""
    async with engine.connect() as conn:
        exists = await conn.scalar(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": f'"{schema}".opportunities'})
        if not exists:
            return True
        rows = await conn.scalar(text(
            "SELECT (SELECT count(*) FROM consumer_offsets) + (SELECT count(*) FROM opportunities)"
            " + (SELECT count(*) FROM touches) + (SELECT count(*) FROM accounts)"))
        return rows == 0
