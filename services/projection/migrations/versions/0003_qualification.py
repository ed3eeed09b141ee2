"""Qualification: funnel stages with who/why, exit criteria marks, the seller's team, deal terms
(amount, expected close date), members engaged at each stage transition.

The default stage becomes the funnel's first, target_base; the old default 'identified' maps
onto it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
EMPTY = sa.text("'{}'::text[]")


def upgrade() -> None:
    op.alter_column("opportunities", "stage", server_default=sa.text("'target_base'"))
    op.execute("UPDATE opportunities SET stage = 'target_base' WHERE stage = 'identified'")
    for name, type_, default in (
        ("stage_author", sa.Text(), None), ("crm_stage", sa.Text(), None),
        ("expected_close_on", sa.Date(), None), ("deal_at", TS, None), ("deal_event_id", sa.Text(), None),
        ("team", JSONB(), sa.text("'{}'::jsonb")), ("criteria", JSONB(), sa.text("'[]'::jsonb")),
        ("proposed_stage", sa.Text(), None),
    ):
        op.add_column("opportunities", sa.Column(name, type_, nullable=default is None, server_default=default))
    op.add_column("opportunities", sa.Column("missing_criteria", ARRAY(sa.Text()), nullable=False,
                                             server_default=EMPTY))
    for name, type_ in (("from_stage", sa.Text()), ("crm_stage", sa.Text()), ("changed_by", sa.Text()),
                        ("reason", sa.Text()), ("engaged_members", sa.Integer()), ("members_count", sa.Integer())):
        op.add_column("stage_changes", sa.Column(name, type_))
    op.add_column("stage_changes", sa.Column("author", sa.Text(), nullable=False, server_default=sa.text("'crm'")))
    op.add_column("stage_changes", sa.Column("criteria", ARRAY(sa.Text()), nullable=False, server_default=EMPTY))
    op.create_table(
        "criterion_marks",
        sa.Column("opportunity_id", sa.Text(), primary_key=True),
        sa.Column("criterion", sa.Text(), primary_key=True),
        sa.Column("holds", sa.Boolean(), nullable=False),
        sa.Column("evidence", sa.Text()),
        sa.Column("marked_by", sa.Text(), nullable=False),
        sa.Column("marked_at", TS, nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
    )
    op.create_table(
        "opportunity_team",
        sa.Column("opportunity_id", sa.Text(), primary_key=True),
        sa.Column("role", sa.Text(), primary_key=True),
        sa.Column("person", sa.Text()),
        sa.Column("assigned_by", sa.Text(), nullable=False),
        sa.Column("assigned_at", TS, nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("opportunity_team")
    op.drop_table("criterion_marks")
    for name in ("criteria", "author", "members_count", "engaged_members", "reason", "changed_by", "crm_stage",
                 "from_stage"):
        op.drop_column("stage_changes", name)
    for name in ("missing_criteria", "proposed_stage", "criteria", "team", "deal_event_id", "deal_at",
                 "expected_close_on", "crm_stage", "stage_author"):
        op.drop_column("opportunities", name)
    op.execute("UPDATE opportunities SET stage = 'identified' WHERE stage = 'target_base'")
    op.alter_column("opportunities", "stage", server_default=sa.text("'identified'"))
