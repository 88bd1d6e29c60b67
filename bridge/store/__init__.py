"""Persistence: SQLite by default, PostgreSQL through DATABASE_URL."""
from bridge.store.repository import RecordedEvent, RecordedIntent, Store

__all__ = ["RecordedEvent", "RecordedIntent", "Store"]
