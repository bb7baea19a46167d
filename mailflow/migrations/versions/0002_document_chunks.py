"""documents in the database: document_chunks, documents.stored_in and documents.purged_at

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 07:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mailflow.models.base

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "document_chunks",
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"],
                                name=op.f("fk_document_chunks_document_id_documents"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("document_id", "seq", name=op.f("pk_document_chunks")),
    )
    if op.get_bind().dialect.name == "postgresql":
        # PDFs and JPEGs are compressed already: store the chunks out of line without trying pglz on them.
        op.execute("ALTER TABLE document_chunks ALTER COLUMN data SET STORAGE EXTERNAL")
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stored_in", sa.String(length=12), server_default="filesystem",
                                      nullable=False))
        batch_op.add_column(sa.Column("purged_at", mailflow.models.base.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_column("purged_at")
        batch_op.drop_column("stored_in")
    op.drop_table("document_chunks")
