"""what-if jobs in the database: any instance shows a job's progress and report, and a
restart does not lose them

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26 00:20:00

What-if jobs lived in the memory of the instance that ran them: behind a load balancer a
supervisor polling for progress reached another instance and got 404, and a restart lost
every report. service/policy/whatif.py now keeps them in `what_if_job`.
"""

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('what_if_job',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('candidate', sa.String(length=250), nullable=False),
    sa.Column('baseline', sa.String(length=250), nullable=False),
    sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('report', sa.Text(), nullable=True),
    sa.Column('changed_csv', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('what_if_job', schema=None) as batch_op:
        batch_op.create_index('ix_what_if_job_started_at', ['started_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('what_if_job', schema=None) as batch_op:
        batch_op.drop_index('ix_what_if_job_started_at')
    op.drop_table('what_if_job')
