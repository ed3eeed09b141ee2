"""Alembic environment: migrations run on a connection handed over by services.projection.db."""

from alembic import context

from services.projection.schema import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the migrations with `python -m services.projection migrate`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table_schema=config.attributes["schema"],
)
with context.begin_transaction():
    context.run_migrations()
