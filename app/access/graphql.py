"""The access policy of the GraphQL schema: one schema extension checks, before anything
executes, every root field an operation selects (through fragments too, introspection
included) against this table — a root field nobody listed is READ (queries, subscriptions) or
refused (mutations), so no new field can be left open by forgetting a decorator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from graphql.utilities import get_operation_ast
from strawberry.extensions import SchemaExtension

from app.access import connection, credentials, policy
from app.access.principal import Action, Principal

# (operation type, root field) -> action; what is not listed takes DEFAULTS.
ROOT_FIELDS: dict[tuple[str, str], Action] = {
    ("query", "health"): Action.OPEN,  # the probe; its version details need READ (Health type)
    ("mutation", "ingestEvents"): Action.INGEST,
}
# Mutations have no default: each must be listed, an unlisted one is refused.
DEFAULTS: dict[str, Action | None] = {"query": Action.READ, "subscription": Action.READ,
                                      "mutation": None}


def action_of(operation: str, field: str) -> Action | None:
    """The action a root field needs (``__schema``, ``__type``, ``__typename``: the default)."""
    return ROOT_FIELDS.get((operation, field), DEFAULTS.get(operation))


def root_fields(document: DocumentNode, operation_name: str | None) -> tuple[str, set[str]]:
    """The operation's type and the names of the root fields it selects (every branch: a field
    under @skip still counts)."""
    op: OperationDefinitionNode | None = get_operation_ast(document, operation_name)
    if op is None:
        return "query", set()
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    names: set[str] = set()
    seen: set[str] = set()
    stack: list[SelectionSetNode] = [op.selection_set]
    while stack:
        for sel in stack.pop().selections:
            if isinstance(sel, FieldNode):
                names.add(sel.name.value)
            elif isinstance(sel, InlineFragmentNode):
                stack.append(sel.selection_set)
            elif isinstance(sel, FragmentSpreadNode) and sel.name.value not in seen:
                seen.add(sel.name.value)
                if sel.name.value in fragments:
                    stack.append(fragments[sel.name.value].selection_set)
    return op.operation.value, names


async def principal_of(context: Any) -> Principal:
    """The caller of a GraphQL operation: the request's Bearer header, or the WebSocket's
    upgrade header or ``connection_init`` payload. Operations executed in-process (no request)
    count as anonymous callers of this server."""
    carrier = context.request if context.request is not None else context.websocket
    if carrier is None:
        return await policy.resolve(context.settings, None)
    token = credentials.from_headers(carrier.headers)
    if token is None and context.websocket is not None:
        token = credentials.from_connection_params(context.connection_params)
    return await connection.of(carrier.scope).principal(context.settings, token)


class Authorise(SchemaExtension):
    """Refuse an operation unless its caller may do what each of its root fields needs."""

    async def on_execute(self) -> AsyncIterator[None]:
        ec = self.execution_context
        if ec.graphql_document is not None:
            operation, names = root_fields(ec.graphql_document, ec.operation_name)
            needed = {action_of(operation, n) for n in names} - {Action.OPEN}
            if needed:
                principal = await principal_of(ec.context)
                try:
                    for action in sorted(needed, key=lambda a: a.value if a else ""):
                        policy.authorise(principal, action)
                except policy.AccessDenied as exc:
                    raise GraphQLError(str(exc)) from None
        yield
