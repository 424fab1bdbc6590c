"""What a registered model's files must be before the pipeline loads them: the files it
registered (their digest, a model-version tag) in the one format it writes (skops).

A model folder is code as much as data: an ``MLmodel`` edited to name a pickle makes
loading it run whatever the pickle holds. skops refuses types it was not told to trust,
so a model that is skops, with the files registered, is a model the pipeline wrote.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pipeline.errors import UserError

DIGEST_TAG = "model_digest"
# Written by MLflow into a registered version's folder when it is downloaded.
ADDED_ON_DOWNLOAD = frozenset({"registered_model_meta"})


def digest(folder: Path) -> str:
    """SHA-256 over the folder's files: their relative paths and contents, in order."""
    total = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    for path in files:
        if path.name in ADDED_ON_DOWNLOAD and path.parent == folder:
            continue
        total.update(path.relative_to(folder).as_posix().encode() + b"\0")
        total.update(hashlib.sha256(path.read_bytes()).digest())
    return total.hexdigest()


def check(
    folder: Path, flavors: dict[str, Any], *, expected: str | None, trusted: list[str], what: str
) -> None:
    """Raise ``UserError`` unless the model in ``folder`` (its ``MLmodel`` flavours given)
    is a skops scikit-learn model whose files have the ``expected`` digest. ``expected``
    None (a version registered before digests were recorded) checks the format only."""
    sklearn = flavors.get("sklearn") or {}
    pyfunc = flavors.get("python_function") or {}
    fmt = sklearn.get("serialization_format")
    file = str(sklearn.get("pickled_model", ""))
    if (
        fmt != "skops"
        or not file.endswith(".skops")
        or pyfunc.get("loader_module")
        not in (
            None,
            "mlflow.sklearn",
        )
    ):
        raise UserError(
            f"registry: {what} is not a skops scikit-learn model as the pipeline writes them "
            f"(serialization_format {fmt!r}, file {file!r}); refusing to load it"
        )
    extra = set(sklearn.get("skops_trusted_types") or []) - set(trusted)
    if extra:  # skops would load whatever types the MLmodel tells it to trust
        raise UserError(f"registry: {what} trusts types the pipeline never does: {sorted(extra)}")
    if sklearn.get("code") or pyfunc.get("code"):
        raise UserError(f"registry: {what} ships code of its own; refusing to load it")
    if expected is not None and digest(folder) != expected:
        raise UserError(
            f"registry: the files of {what} changed since it was registered (their digest is "
            f"not the {DIGEST_TAG} tag); refusing to load it"
        )
