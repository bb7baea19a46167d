"""staff sessions end on the server: staff_users.session_generation (issue 13 finding 5)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 07:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("staff_users", sa.Column("session_generation", sa.Integer(), server_default=sa.text("0"),
                                           nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_column("session_generation")
