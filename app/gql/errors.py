"""GraphQL errors a client may see, and the ones it must not.

A client sees the messages written for it: GraphQL's own (syntax, validation, variable
coercion), permission denials, and the ``ValueError``/``DevlogError`` our resolvers and services
raise for bad arguments ("unknown time zone 'X'", "invalid cursor …"). Any other exception is
a fault of the server — a driver error, an overflow, a bug: its text may carry internal paths,
SQL or driver state, so the client gets "internal server error (reference …)" instead and the
server logs one line with that reference, the request path, the field and the exception (the
traceback at DEBUG). Over HTTP and WebSocket alike (subscription frames are masked too).
"""

from __future__ import annotations

import asyncpg
from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from app.errors import DevlogError
from app.http_errors import log_error, reference


def is_internal(error: GraphQLError) -> bool:
    """Whether the error's text was not written for clients."""
    cause = error.original_error
    if cause is None or isinstance(cause, GraphQLError):
        return False
    if isinstance(cause, asyncpg.PostgresError | asyncpg.InterfaceError):
        return True  # asyncpg's DataError is a ValueError, but its text is driver state
    return not isinstance(cause, ValueError | DevlogError)


class MaskInternalErrors(MaskErrors):
    """Strawberry's MaskErrors with our rule, a reference per error and one log line."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_internal)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        ref = reference()
        field = ".".join(str(p) for p in error.path or ()) or "operation"
        connection = getattr(self.execution_context.context, "request", None) or getattr(
            self.execution_context.context, "websocket", None)
        where = f"GraphQL {field}"
        if connection is not None:
            where += f" ({connection.scope.get('method') or 'WS'} {connection.url.path})"
        assert error.original_error is not None  # is_internal() says so
        log_error(where, error.original_error, ref)
        return GraphQLError(
            message=f"internal server error (reference {ref}; the details are in the server's log)",
            nodes=error.nodes, source=error.source, positions=error.positions, path=error.path,
            original_error=None)
