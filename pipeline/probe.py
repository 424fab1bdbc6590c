"""A store that does not answer is one line at start, within seconds, not minutes of the
client libraries' retries: MLflow retries an HTTP server for minutes, and a database
connection waits as long as the network lets it."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlparse

import sqlalchemy
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from pipeline import sqlite
from pipeline.errors import UserError
from pipeline.stores import unreachable

# Connection arguments that bound the wait, per database driver family.
_TIMEOUT_ARGS = {"postgresql": "connect_timeout", "mysql": "connect_timeout"}


def reachable(key: str, url: str, timeout: float) -> None:
    """Raise ``UserError`` naming ``key`` unless the store at ``url`` (an MLflow server or
    a database; SQLite files and folders are not probed) answers within ``timeout`` s."""
    if url.startswith(("http://", "https://")):
        try:
            urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout).close()
        except urllib.error.HTTPError:
            return  # it answered (a refusal of the health page is the server's business)
        except (OSError, ValueError) as exc:
            raise unreachable(key, url, exc) from None
        return
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError:
        return  # a path or file: URI; no server to wait for
    if backend == "sqlite":
        return
    arg = _TIMEOUT_ARGS.get(backend)
    connect_args = {arg: max(1, round(timeout))} if arg else {}
    engine = sqlalchemy.create_engine(
        url, poolclass=sqlalchemy.pool.NullPool, connect_args=connect_args
    )
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as exc:
        raise unreachable(key, url, exc) from None
    finally:
        engine.dispose()


def writable(key: str, url: str | None) -> None:
    """Raise ``UserError`` naming ``key`` unless the file store of ``url`` (a SQLite
    database or a ``file:`` artifact folder; others are not checked) can be written: its
    folder created if missing, the folder and an existing database file writable."""
    if not url:
        return
    if url.startswith("file:"):
        path = Path(unquote(urlparse(url).path))
        folder, existing = path, None
    elif url.startswith("sqlite") and (path := sqlite.path_of(url)) is not None:
        folder, existing = path.parent, path
    else:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{key}: cannot create {folder}: {exc.strerror or exc}") from None
    for target in (folder, existing):
        if target is not None and target.exists() and not os.access(target, os.W_OK):
            raise UserError(f"{key}: {target} is not writable")
