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


class LimitExceeded(DevlogError):
    """A request asked for more than a limit allows (``DEVLOG_MAX_*``); nothing was run.

    ``extensions`` is what a GraphQL error carrying it shows the client."""

    code = "LIMIT_EXCEEDED"

    def __init__(self, message: str, *, setting: str, limit: float, found: float | None = None) -> None:
        super().__init__(message)
        self.extensions: dict[str, object] = {"code": self.code, "setting": setting, "limit": limit}
        if found is not None:
            self.extensions["found"] = found


class ReadTimeout(DevlogError):
    """A read ran longer than ``DEVLOG_READ_TIMEOUT_SECONDS`` and the database stopped it."""

    code = "TIMEOUT"

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"the query took longer than {seconds:g} s (DEVLOG_READ_TIMEOUT_SECONDS) and was "
            "stopped; ask for a shorter range, fewer items or a narrower filter")
        self.extensions: dict[str, object] = {"code": self.code, "setting": "DEVLOG_READ_TIMEOUT_SECONDS",
                                              "limit": seconds}
