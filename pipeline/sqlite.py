"""SQLite files as stores: their path in a URL, and write-ahead logging."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url


def path_of(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL (None for other databases or in memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def wal(path: str | Path) -> None:
    """Put the SQLite file at ``path`` in write-ahead-log mode, once; raises ``sqlite3.Error``
    (also for an empty file, which SQLite would open as a new database).

    The journal mode is a property of the file, kept by every later connection of any
    client: without it each commit costs a full sync of the database file, and readers
    wait for the writer.
    """
    refuse_empty(path)
    connection = sqlite3.connect(path, timeout=60)
    try:
        if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()


def refuse_empty(path: str | Path) -> None:
    """Raise ``sqlite3.DatabaseError`` for an existing empty file (a bad copy, a full disk):
    SQLite would take it for a new database, and the pipeline would start afresh beside
    runs and studies that are gone."""
    if Path(path).is_file() and Path(path).stat().st_size == 0:
        raise sqlite3.DatabaseError(
            "the file is empty (0 bytes), not a database; restore it from a backup, "
            "or delete it to start with an empty store"
        )
