"""site geometries in PostGIS (PostgreSQL only)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:00:00

On PostgreSQL, `sites.geom` holds each site's geometry as `geometry(MultiPolygon, 4326)`. It is a stored
generated column computed from `geometry_wkb` (the WKB the application writes), so adding it backfills
every existing site and every later insert or update keeps it in step, whatever code path writes the
row. A GIST index serves the bbox and intersection queries of the site list; a GIN index on the
materials (as jsonb) serves the material filter. The expression uses only C functions of PostGIS, so
a dump restores with any search_path. SQLite has no such column: there, shapely and the bbox columns
answer the same queries.
"""

from alembic import op

from monitor.store.db import ensure_postgis

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

GEOM_EXPRESSION = "ST_Multi(ST_Force2D(ST_SetSRID(ST_GeomFromWKB(geometry_wkb), 4326)))"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    ensure_postgis(bind)
    op.execute(
        "ALTER TABLE sites ADD COLUMN geom geometry(MultiPolygon, 4326) "
        f"GENERATED ALWAYS AS ({GEOM_EXPRESSION}) STORED"
    )
    op.execute("CREATE INDEX ix_sites_geom ON sites USING gist (geom)")
    op.execute("CREATE INDEX ix_sites_materials ON sites USING gin ((materials::jsonb))")
    op.execute("ANALYZE sites")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_sites_materials")
    op.execute("DROP INDEX IF EXISTS ix_sites_geom")
    op.execute("ALTER TABLE sites DROP COLUMN IF EXISTS geom")
    # The postgis extension stays: other objects may use it, and dropping it needs a superuser.
