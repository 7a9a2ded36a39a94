"""site geometries in PostGIS (PostgreSQL only)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:00:00

Placeholder: the PostGIS geometry column and its spatial index are added here.
"""

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
