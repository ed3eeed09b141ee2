"""The migrations form one line: `migrate` upgrades to "head", which two heads would refuse."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from services.projection.db import alembic_config


def test_the_migrations_have_one_head():
    heads = ScriptDirectory.from_config(alembic_config("public")).get_heads()
    assert len(heads) == 1, f"several heads {heads}: set down_revision of the newest migration to the one before"
