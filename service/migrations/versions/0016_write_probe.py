"""write probe: a row /v1/health rewrites while writes are failing, to see them work again

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 00:00:00

On a full disk, ingest failed while /v1/health said 200. The writer now remembers that
its last write failed, and health tries a real write (this table, one row per instance)
until one commits, so an instance taken out of rotation comes back by itself.
"""

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('write_probe',
    sa.Column('instance', sa.String(length=80), nullable=False),
    sa.Column('written_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('instance')
    )


def downgrade() -> None:
    op.drop_table('write_probe')
