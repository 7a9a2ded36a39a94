"""Engine creation and schema migration (SQLite with WAL and foreign keys, or PostgreSQL with PostGIS)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

ALEMBIC_INI = Path(__file__).with_name("alembic.ini")
#: Key of the PostgreSQL advisory lock held while migrating: concurrent starts upgrade one at a time.
MIGRATION_LOCK = 0x48_4D_4D_49_47  # "HMMIG"


class DatabaseError(RuntimeError):
    """The database cannot be reached or lacks what the schema needs; the message tells the operator
    what to do and never contains a password."""


class PostGISMissingError(DatabaseError):
    """The PostgreSQL server has no PostGIS, or the database user may not enable it."""


@dataclass(frozen=True)
class SchemaStatus:
    """The Alembic revision of a database (None when it has no schema yet) and the latest one."""

    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


#: Connections an engine keeps open, and how many more it opens for a burst (then closes).
POOL_SIZE, POOL_OVERFLOW = 16, 16


def make_engine(url: str, cache_mib: int = 64) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys, a busy timeout, `unicode_lower()` and a page
    cache of `cache_mib` per connection, and its folder is created.

    The pool keeps `POOL_SIZE` connections: with SQLAlchemy's default of 5, an API worker whose threads
    served more requests at once opened and closed a connection per request (its pragmas run again, its
    page cache starts cold), which cost most under the heaviest load."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        in_memory = parsed.database in (None, "", ":memory:")  # one connection per thread, no pool size
        pool = {} if in_memory else {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW}
        engine = create_engine(url, connect_args={"timeout": 30}, **pool)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            # a 64 MiB page cache (default 2 MiB): the upsert of a day of 100,000 sites walks the value
            # index of every site, which a small cache re-reads from the OS page by page
            cur.execute(f"PRAGMA cache_size=-{int(cache_mib) * 1024}")
            cur.close()
            # SQLite's lower() folds ASCII only; queries that must match Python's str.lower use this.
            dbapi_conn.create_function("unicode_lower", 1, _unicode_lower, deterministic=True)

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)


def _unicode_lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def safe_url(engine: Engine) -> str:
    """The engine's URL with any password masked, fit for messages and logs."""
    return engine.url.render_as_string(hide_password=True)


def alembic_config(engine: Engine) -> Config:
    cfg = Config(str(ALEMBIC_INI))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def head_revision() -> str:
    """The newest migration revision this code knows."""
    head = ScriptDirectory.from_config(Config(str(ALEMBIC_INI))).get_current_head()
    assert head is not None, "the migrations folder has no revision"
    return head


def _connect(engine: Engine) -> Connection:
    """A connection, or a DatabaseError naming the (password-masked) URL when the server cannot be reached."""
    try:
        return engine.connect()
    except OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        if engine.url.password:
            reason = reason.replace(str(engine.url.password), "***")
        raise DatabaseError(f"cannot connect to the database {safe_url(engine)}: {reason}") from exc


def schema_status(engine: Engine) -> SchemaStatus:
    """The database's current revision and the latest one (reads only)."""
    with _connect(engine) as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return SchemaStatus(current, head_revision())


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to the latest schema (idempotent). On PostgreSQL an advisory lock serialises
    processes that start together, so only the first one migrates."""
    cfg = alembic_config(engine)
    with _connect(engine) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        try:
            command.upgrade(cfg, revision)
        except CommandError as exc:  # e.g. the database carries a revision this release does not know
            raise DatabaseError(
                f"cannot upgrade the schema of {safe_url(engine)}: {exc}; a database migrated by a newer "
                "release needs that release (or a restore of the backup taken before it)"
            ) from exc


def ensure_postgis(conn: Connection) -> None:
    """Enable PostGIS in the connected database, or raise PostGISMissingError saying how to install it."""
    if conn.scalar(text("SELECT 1 FROM pg_extension WHERE extname = 'postgis'")):
        return
    database = conn.scalar(text("SELECT current_database()"))
    if not conn.scalar(text("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'")):
        major = int(conn.scalar(text("SHOW server_version_num"))) // 10_000
        raise PostGISMissingError(
            f"PostGIS is not installed on the PostgreSQL {major} server of database {database!r}. "
            f"Install the Debian package postgresql-{major}-postgis-3 on the database server "
            f"(apt-get install postgresql-{major}-postgis-3) or run the postgis/postgis container image, "
            "then run `heritage-monitor db upgrade` again."
        )
    try:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    except DBAPIError as exc:  # PostGIS is not a trusted extension: enabling it may need a superuser
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise PostGISMissingError(
            f"could not enable PostGIS in database {database!r} ({reason}): ask a superuser to run "
            "`CREATE EXTENSION postgis;` in it, then run `heritage-monitor db upgrade` again."
        ) from exc
