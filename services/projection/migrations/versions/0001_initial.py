"""Initial projection schema: accounts, contacts, opportunities, members, touches, signals,
score history, CRM stage changes, consumer offsets and the change feed sequence.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
EMPTY = sa.text("'{}'::text[]")


def _texts() -> ARRAY:
    return ARRAY(sa.Text())


def upgrade() -> None:
    op.execute(sa.schema.CreateSequence(sa.Sequence("opportunity_change_seq")))

    op.create_table(
        "accounts",
        sa.Column("account_id", sa.Text(), primary_key=True),
        sa.Column("name", sa.Text()),
        sa.Column("domains", _texts(), nullable=False, server_default=EMPTY),
        sa.Column("owner", sa.Text()),
        sa.Column("ref_at", TS),
        sa.Column("ref_event_id", sa.Text()),
        sa.Column("first_seen_at", TS),
        sa.Column("last_activity_at", TS),
    )
    op.create_index("ix_accounts_domains", "accounts", ["domains"], postgresql_using="gin")

    op.create_table(
        "contacts",
        sa.Column("person_id", sa.Text(), primary_key=True),
        sa.Column("account_id", sa.Text()),
        sa.Column("email", sa.Text()),
        sa.Column("name", sa.Text()),
        sa.Column("job_title", sa.Text()),
        sa.Column("department", sa.Text()),
        sa.Column("role", sa.Text()),
        sa.Column("role_source", sa.Text()),
        sa.Column("ref_at", TS),
        sa.Column("ref_event_id", sa.Text()),
        sa.Column("first_seen_at", TS),
        sa.Column("last_activity_at", TS),
    )
    op.create_index("ix_contacts_account", "contacts", ["account_id"])
    op.create_index("ix_contacts_first_seen", "contacts", ["first_seen_at"])

    op.create_table(
        "opportunities",
        sa.Column("opportunity_id", sa.Text(), primary_key=True),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("solution", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("last_event_id", sa.Text()),
        sa.Column("origin", sa.Text()),
        sa.Column("expected_roles", _texts(), nullable=False, server_default=EMPTY),
        sa.Column("required_roles", _texts(), nullable=False, server_default=EMPTY),
        sa.Column("created_at", TS),
        sa.Column("score", sa.Float()),
        sa.Column("tier", sa.Text()),
        sa.Column("score_version", sa.Integer()),
        sa.Column("score_as_of", TS),
        sa.Column("breakdown", JSONB()),
        sa.Column("stage", sa.Text(), nullable=False, server_default=sa.text("'identified'")),
        sa.Column("outcome", sa.Text(), nullable=False, server_default=sa.text("'open'")),
        sa.Column("amount", sa.Float()),
        sa.Column("currency", sa.Text()),
        sa.Column("stage_changed_at", TS),
        sa.Column("stage_event_id", sa.Text()),
        sa.Column("status", sa.Text(), nullable=False, server_default=sa.text("'forming'")),
        sa.Column("formed_at", TS),
        sa.Column("first_touch_at", TS),
        sa.Column("last_activity_at", TS),
        sa.Column("members_count", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("engaged_members", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("touches_count", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("departments", _texts(), nullable=False, server_default=EMPTY),
        sa.Column("covered_roles", _texts(), nullable=False, server_default=EMPTY),
        sa.Column("missing_roles", _texts(), nullable=False, server_default=EMPTY),
        sa.Column("change_seq", sa.BigInteger(), nullable=False,
                  server_default=sa.text("nextval('opportunity_change_seq')")),
    )
    op.create_index("ix_opportunities_account", "opportunities", ["account_id"])
    op.create_index("ix_opportunities_change_seq", "opportunities", ["change_seq"], unique=True)
    op.create_index("ix_opportunities_score", "opportunities", [sa.text("score DESC NULLS LAST")])
    op.create_index("ix_opportunities_created", "opportunities", ["created_at"])

    op.create_table(
        "opportunity_members",
        sa.Column("opportunity_id", sa.Text(), primary_key=True),
        sa.Column("person_id", sa.Text(), primary_key=True),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("email", sa.Text()),
        sa.Column("name", sa.Text()),
        sa.Column("job_title", sa.Text()),
        sa.Column("department", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("role_source", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("joined_at", TS, nullable=False),
        sa.Column("touches_count", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("first_touch_at", TS),
        sa.Column("last_touch_at", TS),
        sa.Column("engagement", sa.Float()),
    )
    op.create_index("ix_members_person", "opportunity_members", ["person_id"])

    op.create_table(
        "touches",
        sa.Column("scope", sa.Text(), primary_key=True),
        sa.Column("touch_id", sa.Text(), primary_key=True),
        sa.Column("opportunity_id", sa.Text()),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("person_id", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("url", sa.Text()),
        sa.Column("title", sa.Text()),
        sa.Column("asset_id", sa.Text()),
        sa.Column("topic", sa.Text()),
    )
    op.create_index("ix_touches_opportunity", "touches", ["opportunity_id", "occurred_at"])
    op.create_index("ix_touches_account", "touches", ["account_id", "occurred_at"])
    op.create_index("ix_touches_person", "touches", ["person_id"])
    op.create_index("ix_touches_occurred", "touches", ["occurred_at"])

    op.create_table(
        "signals",
        sa.Column("signal_id", sa.Text(), primary_key=True),
        sa.Column("opportunity_id", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Text(), nullable=False),
        sa.Column("solution", sa.Text(), nullable=False),
        sa.Column("signal", sa.Text(), nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("tier", sa.Text(), nullable=False),
        sa.Column("members", JSONB(), nullable=False),
        sa.Column("covered_roles", _texts(), nullable=False),
        sa.Column("missing_roles", _texts(), nullable=False),
        sa.Column("trigger_event_ids", _texts(), nullable=False),
        sa.Column("breakdown", JSONB()),
        sa.Column("detail", JSONB(), nullable=False),
    )
    op.create_index("ix_signals_opportunity", "signals", ["opportunity_id", "occurred_at"])

    op.create_table(
        "score_history",
        sa.Column("opportunity_id", sa.Text(), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("as_of", TS, primary_key=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("tier", sa.Text(), nullable=False),
        sa.Column("breakdown", JSONB(), nullable=False),
    )

    op.create_table(
        "stage_changes",
        sa.Column("event_id", sa.Text(), primary_key=True),
        sa.Column("opportunity_id", sa.Text(), nullable=False),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("amount", sa.Float()),
        sa.Column("currency", sa.Text()),
        sa.Column("changed_at", TS, nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
    )
    op.create_index("ix_stage_changes_opportunity", "stage_changes", ["opportunity_id", "changed_at"])

    op.create_table(
        "consumer_offsets",
        sa.Column("consumer", sa.Text(), primary_key=True),
        sa.Column("topic", sa.Text(), primary_key=True),
        sa.Column("partition", sa.Integer(), primary_key=True),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    for table in ("consumer_offsets", "stage_changes", "score_history", "signals", "touches",
                  "opportunity_members", "opportunities", "contacts", "accounts"):
        op.drop_table(table)
    op.execute(sa.schema.DropSequence(sa.Sequence("opportunity_change_seq")))
