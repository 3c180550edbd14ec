"""tenant ids up to 64 characters

Revision ID: 8d2f6a1c3e54
Revises: 71a3e44a7480
Create Date: 2026-12-02 16:45:00

A host's own tenant ids (`ensure_tenant`) may be UUIDs, 36 characters: the id and every
tenant_id column widen from 32 to 64. Widening a varchar is a catalog change on PostgreSQL (no
table rewrite). SQLite does not enforce a varchar's length, and its batch mode would rebuild
the tenants table, which a foreign key's ON DELETE CASCADE makes dangerous: there the columns
are left as they are, and the migration tests compare types without lengths on SQLite.
"""
from alembic import op
import sqlalchemy as sa


revision = '8d2f6a1c3e54'
down_revision = '71a3e44a7480'
branch_labels = None
depends_on = None

TENANT_COLUMNS = [
    ('hookline_tenants', 'id'),
    ('hookline_api_keys', 'tenant_id'),
    ('hookline_event_types', 'tenant_id'),
    ('hookline_events', 'tenant_id'),
    ('hookline_subscriptions', 'tenant_id'),
    ('hookline_users', 'tenant_id'),
    ('hookline_deliveries', 'tenant_id'),
    ('hookline_attempts', 'tenant_id'),
    ('hookline_portal_links', 'tenant_id'),
]


def _alter(length_from: int, length_to: int) -> None:
    if op.get_bind().dialect.name == 'sqlite':
        return
    for table, column in TENANT_COLUMNS:
        op.alter_column(
            table, column,
            existing_type=sa.String(length=length_from),
            type_=sa.String(length=length_to),
        )


def upgrade():
    _alter(32, 64)


def downgrade():
    _alter(64, 32)
