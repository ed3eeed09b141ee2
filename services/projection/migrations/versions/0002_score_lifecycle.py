"""The lifecycle as of the latest score: status, formed_at and stalled_since from scoring.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("opportunities", sa.Column("score_status", sa.Text()))
    op.add_column("opportunities", sa.Column("score_formed_at", TS))
    op.add_column("opportunities", sa.Column("score_stalled_since", TS))


def downgrade() -> None:
    for column in ("score_stalled_since", "score_formed_at", "score_status"):
        op.drop_column("opportunities", column)
