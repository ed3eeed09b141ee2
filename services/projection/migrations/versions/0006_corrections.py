"""Corrections people make (bg.correction.v1, issue 16): their history (who, when, why, what,
undone by whom), members' notes, concerns and stances, and the account merges in force.

Revision ID: 0006_corrections
Revises: 0005_member_why
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0006_corrections"
down_revision = "0005_member_why"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "corrections",
        sa.Column("correction_id", sa.Text(), primary_key=True),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("opportunity_id", sa.Text()),
        sa.Column("person_id", sa.Text()),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("made_at", TS, nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("detail", JSONB(), nullable=False),
        sa.Column("undone_by_id", sa.Text()),
        sa.Column("undone_by", sa.Text()),
        sa.Column("undone_at", TS),
        sa.Column("undo_reason", sa.Text()),
    )
    op.create_index("ix_corrections_opportunity", "corrections", ["opportunity_id", "made_at"])
    op.create_index("ix_corrections_subject", "corrections", ["subject", "made_at"])
    op.create_table(
        "member_annotations",
        sa.Column("opportunity_id", sa.Text(), primary_key=True),
        sa.Column("person_id", sa.Text(), primary_key=True),
        sa.Column("stance", sa.Text()),
        sa.Column("influence", sa.Text()),
        sa.Column("stance_by", sa.Text()),
        sa.Column("stance_at", TS),
        sa.Column("stance_correction_id", sa.Text()),
        sa.Column("note", sa.Text()),
        sa.Column("concerns", ARRAY(sa.Text()), nullable=False, server_default=sa.text("'{}'::text[]")),
        sa.Column("note_by", sa.Text()),
        sa.Column("note_at", TS),
        sa.Column("note_correction_id", sa.Text()),
    )
    op.create_table(
        "account_merges",
        sa.Column("merged", sa.Text(), primary_key=True),
        sa.Column("into", sa.Text(), nullable=False),
        sa.Column("correction_id", sa.Text(), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("made_at", TS, nullable=False),
    )
    op.create_index("ix_account_merges_into", "account_merges", ["into"])


def downgrade() -> None:
    op.drop_table("account_merges")
    op.drop_table("member_annotations")
    op.drop_table("corrections")
