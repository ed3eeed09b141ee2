"""Why each member is in the group, in their role (issue 16): the basis grouping records on the
member (MemberRef.why: the account's rule, the content that matched the solution, the title rule
or the correction and its author), as JSON on the member row. Additive: NULL for rows written
before it, until the member's next event.

Revision ID: 0005_member_why
Revises: 0004_merges
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005_member_why"
down_revision = "0004_merges"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("opportunity_members", sa.Column("why", JSONB()))


def downgrade() -> None:
    op.drop_column("opportunity_members", "why")
