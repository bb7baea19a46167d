"""drop what the 5-tries lockout left: login_attempts, staff_users.failed_logins / locked_until and
accounts.failed_logins. The login limits live in rate_counters (mailflow.accounts.throttle) since issue
13; nothing has written these since.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 10:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mailflow.models.base

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("login_attempts") as batch:
        batch.drop_index("ix_login_attempts_key_at")
    op.drop_table("login_attempts")
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_column("failed_logins")
        batch.drop_column("locked_until")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("failed_logins")


def _failed_logins() -> sa.Column[int]:
    return sa.Column("failed_logins", sa.Integer(), server_default=sa.text("0"), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(_failed_logins())
    with op.batch_alter_table("staff_users") as batch:
        batch.add_column(_failed_logins())
        batch.add_column(sa.Column("locked_until", mailflow.models.base.UTCDateTime(), nullable=True))
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("at", mailflow.models.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_attempts")),
    )
    with op.batch_alter_table("login_attempts") as batch:
        batch.create_index("ix_login_attempts_key_at", ["key", "at"], unique=False)
