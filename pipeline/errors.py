"""The exception types the entry point reports in one line: mistakes a user can fix (bad
config, bad data, missing files; exit 2) and stores that could not be written mid-run."""


class UserError(Exception):
    """A problem with the user's input. The entry point prints its message and exits 2."""


def require(ok: bool, key: str, condition: str, value: object) -> None:
    """Raise ``The '<key>' parameter must be <condition>. Got <value> instead.`` unless ok."""
    if not ok:
        raise UserError(f"The '{key}' parameter must be {condition}. Got {value!r} instead.")


class SchemaChanged(UserError):
    """Today's columns are not the champion's (``registry.allow_schema_change=false``): the
    retraining job stops before any run is created, with its own exit code."""

    exit_code = 65  # EX_DATAERR


class StoreWriteError(Exception):
    """A store could not be written mid-run (a full disk, a folder made read-only): the
    entry point prints the message and exits 74; the runs are ended as FAILED."""
