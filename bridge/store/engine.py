"""Engines for the two supported databases, with the settings each needs for safe concurrent use."""
from __future__ import annotations

import sqlite3
import time

from sqlalchemy import Engine, create_engine, event

SQLITE_BUSY_TIMEOUT_MS = 15000
READ_ONLY = "bridge_read_only"   # execution option: this connection only reads


def normalise_url(url: str) -> str:
    """Heroku hands out `postgres://`; SQLAlchemy wants a driver named."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    return create_engine(url, pool_pre_ping=True, future=True)


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                                              "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let us issue BEGIN ourselves: pysqlite's implicit transactions defer the write lock,
        # which turns two concurrent writers into a "database is locked" error instead of a wait.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        _use_wal(cursor)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        # Readers need no write lock (WAL lets them run beside a writer); writers take it up front.
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _use_wal(cursor) -> None:
    """WAL lets readers run beside the writer. The mode is stored in the file, so only the first
    connection ever switches it; the switch needs a moment alone with the file and does not wait
    in the busy handler, so processes opening a new database together retry it briefly."""
    for attempt in range(50):
        if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
            return
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            time.sleep(0.02 * (attempt + 1))
    cursor.execute("PRAGMA journal_mode=WAL")
