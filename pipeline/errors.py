"""The one exception type for mistakes a user can fix: bad config, bad data, missing files."""


class UserError(Exception):
    """A problem with the user's input. The entry point prints its message and exits 2."""


def require(ok: bool, key: str, condition: str, value: object) -> None:
    """Raise ``The '<key>' parameter must be <condition>. Got <value> instead.`` unless ok."""
    if not ok:
        raise UserError(f"The '{key}' parameter must be {condition}. Got {value!r} instead.")
