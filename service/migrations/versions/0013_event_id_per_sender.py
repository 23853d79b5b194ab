"""event ids are unique per sender (source), not globally; rejects name their sender

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 01:00:00

A second CAD sending an event id the first had used got the first CAD's answer and its
event was never stored. `cad_event` is now unique on (source, event_id). `cad_reject`
gains `sender` (`key:<id>` or `subscriber`) so each sender keeps at most
LIAISON_REJECTS_PER_KEY rejects; rejects kept before have none and are never trimmed.
"""

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None



def _cad_event_without_global_unique() -> sa.Table:
    """cad_event as 0001 made it, less UNIQUE (event_id): SQLite cannot drop a constraint,
    and 0001 left this one unnamed, so the table is rebuilt from this definition."""
    return sa.Table(
        'cad_event', sa.MetaData(),
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('event_id', sa.String(length=200), nullable=False),
        sa.Column('call_id', sa.String(length=40), nullable=False),
        sa.Column('source', sa.String(length=40), nullable=False),
        sa.Column('incident_id', sa.String(length=120), nullable=False),
        sa.Column('type', sa.String(length=16), nullable=False),
        sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('response', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.Index('ix_cad_event_call_id', 'call_id'),
    )


def _global_unique_name(bind: sa.engine.Connection) -> str | None:
    for uc in sa.inspect(bind).get_unique_constraints("cad_event"):
        if uc["column_names"] == ["event_id"]:
            return uc["name"]
    return None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        with op.batch_alter_table('cad_event', recreate='always',
                                  copy_from=_cad_event_without_global_unique()):
            pass
    else:
        name = _global_unique_name(bind)
        if name is not None:
            op.drop_constraint(name, 'cad_event', type_='unique')
    op.create_index('uq_cad_event_source_event_id', 'cad_event', ['source', 'event_id'],
                    unique=True)
    with op.batch_alter_table('cad_reject', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sender', sa.String(length=120), nullable=True))
        batch_op.create_index('ix_cad_reject_sender_id', ['sender', 'id'], unique=False)


def downgrade() -> None:
    # Fails where two senders used one event id: an older Liaison cannot hold both.
    with op.batch_alter_table('cad_reject', schema=None) as batch_op:
        batch_op.drop_index('ix_cad_reject_sender_id')
        batch_op.drop_column('sender')
    op.drop_index('uq_cad_event_source_event_id', table_name='cad_event')
    with op.batch_alter_table('cad_event', schema=None) as batch_op:
        batch_op.create_unique_constraint('cad_event_event_id_key', ['event_id'])
