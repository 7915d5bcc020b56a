"""Errors that the command line reports as one line instead of a traceback."""


class ConfigError(ValueError):
    """A setting or an input that the user can fix; the message says what and how."""
