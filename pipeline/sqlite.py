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
    """Put the SQLite file at ``path`` in write-ahead-log mode, once; raises ``sqlite3.Error``.

    The journal mode is a property of the file, kept by every later connection of any
    client: without it each commit costs a full sync of the database file, and readers
    wait for the writer.
    """
    connection = sqlite3.connect(path, timeout=60)
    try:
        if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()
