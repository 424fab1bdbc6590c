"""The one exception type for mistakes a user can fix: bad config, bad data, missing files."""


class UserError(Exception):
    """A problem with the user's input. The entry point prints its message and exits 2."""
