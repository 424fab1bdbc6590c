"""A store that does not answer is one line at start, within seconds, not minutes of the
client libraries' retries: MLflow retries an HTTP server for minutes, and a database
connection waits as long as the network lets it."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

import sqlalchemy
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from pipeline import sqlite
from pipeline.errors import UserError
from pipeline.stores import unreachable

# Connection arguments that bound the wait, per database and driver.
_TIMEOUT_ARGS = {
    "postgresql+psycopg": "connect_timeout",
    "postgresql+psycopg2": "connect_timeout",
    "mysql+pymysql": "connect_timeout",
    "mysql+mysqldb": "connect_timeout",
}


def _http(key: str, url: str, timeout: float) -> None:
    """Any HTTP answer from the server will do; no answer is one line. Credentials in the
    URL and MLflow's TLS settings are used as MLflow's own client uses them."""
    import requests

    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        verify: bool | str = False
    else:
        verify = os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or True
    with requests.Session() as session:  # (closed, with its sockets, on every path)
        try:
            session.get(f"{url.rstrip('/')}/health", timeout=timeout, verify=verify).close()
        except requests.RequestException as exc:
            raise unreachable(key, url, exc) from None


def reachable(key: str, url: str, timeout: float) -> None:
    """Raise ``UserError`` naming ``key`` unless the store at ``url`` (an MLflow server or
    a database; SQLite files and folders are not probed) answers within ``timeout`` s."""
    if url.startswith(("http://", "https://")):
        _http(key, url, timeout)
        return
    if url.startswith("file:") or "://" not in url:
        return  # a folder (MLflow's file store); no server to wait for
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError:
        return
    if backend == "sqlite":
        return
    arg = _TIMEOUT_ARGS.get(f"{backend}+{make_url(url).get_driver_name()}")
    connect_args = {arg: max(1, round(timeout))} if arg else {}
    try:
        engine = sqlalchemy.create_engine(
            url, poolclass=sqlalchemy.pool.NullPool, connect_args=connect_args
        )
    except sqlalchemy.exc.NoSuchModuleError:
        return  # not a database SQLAlchemy knows (another MLflow store scheme)
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
