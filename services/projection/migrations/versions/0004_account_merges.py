"""Account merges (issues 15, 16): an opportunity whose account was merged into another names the
opportunity it lives on in (`merged_into`, None again when the merge is undone), guarded by the
version of the opportunity event that said so (`merge_version`).

Revision ID: 0004_merges
Revises: 0003
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_merges"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("opportunities", sa.Column("merged_into", sa.Text()))
    op.add_column("opportunities", sa.Column("merge_version", sa.Integer()))
    op.create_index("ix_opportunities_merged_into", "opportunities", ["merged_into"])


def downgrade() -> None:
    op.drop_index("ix_opportunities_merged_into", "opportunities")
    op.drop_column("opportunities", "merge_version")
    op.drop_column("opportunities", "merged_into")
