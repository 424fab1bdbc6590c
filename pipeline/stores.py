"""Store locations: absolute paths, the installed driver's spelling, masked passwords.

Pure functions of URLs and paths; ``constraints.validate`` calls ``resolve`` once, and every
message that names a store goes through ``mask_url`` or ``unreachable``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from pipeline.config import PROJECT_ROOT
from pipeline.errors import UserError, require

if TYPE_CHECKING:
    from pipeline.config import Config


@dataclass(frozen=True)
class Stores:
    """Where the job's stores are, every path absolute."""

    store_dir: str
    tracking_uri: str
    artifact_location: str | None
    storage: str


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    if "@" not in url or "://" not in url:
        return url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # not a database URL: mask the user-info part by hand
        scheme, rest = url.split("://", 1)
        userinfo, host = rest.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"


def unreachable(key: str, url: str, exc: BaseException) -> UserError:
    """One line for a store that cannot be used: the URL masked, the password scrubbed."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    try:
        password = make_url(url).password
    except ArgumentError:
        password = None
    if password:
        text = text.replace(str(password), "***")
    return UserError(f"{key}: cannot use {mask_url(url)}: {text}")


def absolute_sqlite(url: str, root: Path) -> str:
    """Make the path of a ``sqlite:///relative.db`` URL absolute against ``root``."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        path = url[len(prefix) :]
        if path and path != ":memory:":
            return prefix + str((root / path).resolve())
    return url


def psycopg(url: str) -> str:
    """``postgresql://`` with the installed driver (psycopg 3), as SQLAlchemy needs it spelt."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def resolve(
    *,
    store_dir: str,
    tracking_uri: str | None,
    artifact_location: str | None,
    storage: str | None,
    root: Path,
) -> Stores:
    """The stores a job uses: the embedded ones under ``store_dir`` unless a URL is given."""
    store = Path(store_dir).expanduser()
    store = (store if store.is_absolute() else (root / store)).resolve()
    tracking = psycopg(absolute_sqlite(tracking_uri or f"sqlite:///{store / 'mlflow.db'}", root))
    study = psycopg(absolute_sqlite(storage or f"sqlite:///{store / 'optuna.db'}", root))
    try:
        make_url(study)
    except ArgumentError:
        require(
            False,
            "search.storage",
            "a database URL such as postgresql+psycopg://user@host/db",
            mask_url(study),
        )
    artifacts = artifact_location or (store / "artifacts").as_uri()
    if "://" not in artifacts:
        artifacts = (root / Path(artifacts).expanduser()).resolve().as_uri()
    if tracking.startswith(("http://", "https://")) and not artifact_location:
        artifacts = None  # the tracking server's own default (proxied artifacts)
    return Stores(str(store), tracking, artifacts, study)


def check_shared(stores: Stores) -> None:
    """Stores other machines can share (a worker's): no file-based ones."""
    require(
        not stores.storage.startswith("sqlite"),
        "search.storage",
        "a PostgreSQL URL for job=worker (SQLite is one process's store; see Scale-out in the "
        "README, e.g. search=distributed)",
        mask_url(stores.storage),
    )
    uri = stores.tracking_uri
    require(
        not uri.startswith(("sqlite", "file:")) and "://" in uri,
        "tracking.uri",
        "an http(s):// tracking server or a PostgreSQL URL for job=worker (e.g. tracking=server)",
        mask_url(uri),
    )


def ui_command(uri: str) -> str:
    if uri.startswith(("http://", "https://")):
        return "the tracking server is up"
    default = f"sqlite:///{PROJECT_ROOT / 'mlruns' / 'mlflow.db'}"
    return "make ui" if uri == default else f"make ui TRACKING_URI={mask_url(uri)}"


def public_config(cfg: Config) -> dict[str, Any]:
    """The resolved config as plain values, store URLs with any password masked."""
    values = asdict(cfg)
    values["search"]["storage"] = mask_url(cfg.search.storage)
    values["tracking"]["uri"] = mask_url(cfg.tracking.uri)
    values["search"]["penalties"] = [p.value for p in cfg.search.penalties]
    return values


def config_digest(cfg: Config) -> str:
    """A digest of what the job trains: data source, split and search settings."""
    values = public_config(cfg)
    for key in ("storage", "fresh", "progress_bar", "heartbeat_interval", "grace_period"):
        values["search"].pop(key)
    # Settings added later, absent at their defaults: earlier champions' digests still match.
    for key, default in (("select", "best"), ("stability_bootstrap", 0)):
        if values["search"].get(key) == default:
            values["search"].pop(key)
    if not values["data"].get("categorical"):  # data.categorical, added later, at its default
        values["data"].pop("categorical", None)
    payload = {k: values[k] for k in ("data", "split", "search")}
    payload["model_name"] = cfg.registry.model_name
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[
        :16
    ]


def flatten(prefix: str, values: dict[str, Any]) -> Iterable[tuple[str, Any]]:
    """``{"a": {"b": 1}}`` as ``("prefix.a.b", 1)`` pairs."""
    for key, value in values.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            yield from flatten(name, value)
        else:
            yield name, value


def secret_urls(values: dict[str, Any]) -> dict[str, str]:
    """The URLs with a password among ``values`` (nested), each with its masked form."""
    found = {}
    for _, value in flatten("", values):
        if not isinstance(value, str) or "://" not in value:
            continue
        try:
            password = make_url(value).password
        except ArgumentError:
            continue
        if password:
            found[value] = mask_url(value)
    return found
