"""metrics indexes: the program figures select calls by the time they were opened

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 20:30:00
"""

from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # service/figures/metrics.py: every figure is over calls opened in [from, to), all districts
    # or one. Without these a monthly figure reads every call ever stored.
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.create_index('ix_call_opened_at', ['opened_at'], unique=False)
        batch_op.create_index('ix_call_district_opened_at', ['district', 'opened_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.drop_index('ix_call_district_opened_at')
        batch_op.drop_index('ix_call_opened_at')
