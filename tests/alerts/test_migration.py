"""Migration 0002 creates exactly the delivery tables, as the ORM declares them, and drops them again."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from monitor.store.db import alembic_config, upgrade
from monitor.store.delivery_tables import AlertDeliveryMarkRow, AlertDeliveryRow, SubscriptionOptionsRow

TABLES = {
    t.__tablename__: t.__table__ for t in (AlertDeliveryRow, AlertDeliveryMarkRow, SubscriptionOptionsRow)
}


def test_migration_matches_the_tables_and_downgrades(store):
    engine = store.engine
    inspector = inspect(engine)
    assert set(TABLES) <= set(inspector.get_table_names())
    for name, table in TABLES.items():
        columns = {c["name"]: c["nullable"] for c in inspector.get_columns(name)}
        assert columns == {c.name: c.nullable for c in table.columns}, name
    indexes = {i["name"] for i in inspector.get_indexes("alert_deliveries")}
    assert {"ix_alert_deliveries_due", "ix_alert_deliveries_alert_id"} <= indexes

    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    remaining = set(inspect(engine).get_table_names())
    assert not set(TABLES) & remaining and {"alerts", "subscriptions"} <= remaining
    upgrade(engine)
    assert set(TABLES) <= set(inspect(engine).get_table_names())
