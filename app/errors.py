"""Errors that end a command with one clear line instead of a traceback."""


class DevlogError(Exception):
    """Base of the errors the CLI reports as a single line (``devlog: <message>``)."""

    exit_code = 1


class ConfigError(DevlogError):
    """A setting is missing, malformed or contradictory."""

    exit_code = 2


class DatabaseUnavailable(DevlogError):
    """The configured database cannot be reached or used."""


class EmbeddedPostgresError(DevlogError):
    """The embedded PostgreSQL could not be initialised, started or stopped."""


class PortInUse(DevlogError):
    """The server's listen address is taken."""
