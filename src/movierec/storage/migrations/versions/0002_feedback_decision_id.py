"""feedback events name the served decision

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("feedback_events", sa.Column("decision_id", sa.String(32)))


def downgrade() -> None:
    op.drop_column("feedback_events", "decision_id")
