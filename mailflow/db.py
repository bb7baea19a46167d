"""The database: engine, sessions, and the Alembic schema upgrade behind `mailflow init`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the web and the dispatcher read while one writes; busy_timeout waits instead of failing.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


@contextmanager
def savepoint(session: Session) -> Iterator[None]:
    """``session.begin_nested()`` that nests inside the caller's transaction on SQLite too. Python's sqlite3
    opens a transaction only before a write, so a SAVEPOINT issued before the caller's first write opens a
    transaction of its own, and its RELEASE commits it: what the savepoint wrote would be committed at once,
    apart from the rest of the caller's work (a pending binding was seen without its link and expired by a
    racing request). BEGIN IMMEDIATE first takes the write lock, as the savepoint's write would, and keeps
    it one transaction."""
    conn = session.connection()
    if conn.dialect.name == "sqlite" and not conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    with session.begin_nested():
        yield


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for another database or an in-memory one."""
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[1] if "///" in url else ""
    return Path(path) if path and path != ":memory:" else None


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # A server that silently drops packets must not hang a start or a request for minutes.
    kwargs.setdefault("connect_args", {"connect_timeout": CONNECT_TIMEOUT_SECONDS})
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    return create_engine(url, **kwargs)


CONNECT_TIMEOUT_SECONDS = 10

# Connections of the PostgreSQL read engine: the web reads through it a few at a time (see
# mailflow.web.deps.THREADED_READS), so a small pool is enough.
READ_POOL_SIZE = 4


class Database:
    """One engine and its session factory, shared by the web app, the scheduler and the CLI."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        self._read_engine: Engine | None = None

    @property
    def read_engine(self) -> Engine:
        """For single SELECTs that need no transaction (a page's lookup). On PostgreSQL its own small
        pool in autocommit and without pre-ping: BEGIN, ROLLBACK and the ping were three of a token
        lookup's four round trips (1.0 ms -> 0.33 ms). A connection the server dropped then fails its
        query instead of the ping: read_once_more() retries such a read once. On SQLite, the engine."""
        if not self.is_postgres:
            return self.engine
        if self._read_engine is None:
            self._read_engine = create_engine(self.engine.url, isolation_level="AUTOCOMMIT",
                                              connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
                                              pool_size=READ_POOL_SIZE, max_overflow=READ_POOL_SIZE)
        return self._read_engine

    def read_once_more(self, read: Callable[[Connection], T]) -> T:
        """``read(connection)`` on read_engine, once more on a fresh connection when the first one turned
        out dead (the server restarted since it was pooled); any other error is the caller's."""
        try:
            with self.read_engine.connect() as connection:
                return read(connection)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        with self.read_engine.connect() as connection:
            return read(connection)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends normally, rolled back on any error."""
        session = self.sessionmaker()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def dispose(self) -> None:
        self.engine.dispose()
        if self._read_engine is not None:
            self._read_engine.dispose()


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def schema_is_current(db: Database) -> bool:
    head = ScriptDirectory.from_config(alembic_config(db.url)).get_current_head()
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision() == head


def has_schema(db: Database) -> bool:
    """Whether Alembic has put any revision of the schema there (init_schema upgrades an older one)."""
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision() is not None


def init_schema(db: Database) -> None:
    """Create or upgrade the schema to the newest migration; running it again changes nothing."""
    cfg = alembic_config(db.url)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
