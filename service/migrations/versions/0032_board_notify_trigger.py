"""a new board message notifies the other instances from the database itself

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07 15:30:00

Issue 18: the writer sent `SELECT pg_notify(...)` after each batch's board rows, a round
trip of its own (one of a batch's fifteen on PostgreSQL). A statement-level trigger on
`board_message` now sends the same notification (channel `liaison_board`, payload the
highest seq the statement wrote) within the INSERT's own round trip. As before, it is
delivered at commit and not at all on rollback. SQLite has no LISTEN/NOTIFY: nothing there.
"""

from alembic import op

revision = '0032'
down_revision = '0031'
branch_labels = None
depends_on = None

# The channel service/writing/bus.py listens on (BOARD_CHANNEL): kept literal here, as a
# migration must not change when the code does.
_FUNCTION = """
CREATE FUNCTION liaison_board_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('liaison_board', (SELECT max(seq) FROM written)::text);
    RETURN NULL;
END
$$
"""
_TRIGGER = """
CREATE TRIGGER board_message_notify AFTER INSERT ON board_message
REFERENCING NEW TABLE AS written
FOR EACH STATEMENT EXECUTE FUNCTION liaison_board_notify()
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_FUNCTION)
    op.execute(_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER board_message_notify ON board_message")
    op.execute("DROP FUNCTION liaison_board_notify()")
