"""What one GraphQL operation may ask for, checked before it runs.

Limits a real client never meets and an abusive one always does (defaults in
``app/settings.py``, table in the README's "Limits"): the document's size and tokens, how deep
it nests, how many root fields and aliases it has, how many values its answer may hold (the
cost estimate of ``app.gql.cost``), and how long a text or list argument may be. Each refusal is
one GraphQL error with ``extensions: {code: "LIMIT_EXCEEDED", setting, limit, found}``, and
nothing runs. A query also gets one read deadline for all its statements (``app.db.reads``).

Cheap for well-behaved clients: the size check is a length, parsing and validation are cached
(bounded LRU, shared by all requests; the document rule class is created once per set of
limits, because Strawberry's validation cache keys on the tuple of rule classes), and only the
cost walk and the variables check run per request.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any, NamedTuple

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    ValidationContext,
    ValidationRule,
    get_named_type,
    parse,
)
from strawberry.extensions import SchemaExtension

from app.db import reads
from app.gql.cost import query_cost
from app.settings import Settings

# Values of these types are exempt from the text and list limits (an ingest batch is bounded by
# DEVLOG_MAX_BATCH_EVENTS and DEVLOG_MAX_BODY_BYTES instead).
EXEMPT_TYPES = frozenset({"EventBatch"})


class Limits(NamedTuple):
    query_bytes: int
    query_tokens: int
    depth: int
    root_fields: int
    aliases: int
    cost: int
    text: int
    items: int

    @classmethod
    def of(cls, s: Settings) -> Limits:
        return cls(s.max_query_bytes, s.max_query_tokens, s.max_query_depth, s.max_root_fields,
                   s.max_aliases, s.max_query_cost, s.max_text_argument, s.max_list_argument)


DEFAULT = Limits.of(Settings())


def refusal(what: str, setting: str, limit: int, found: int | None = None) -> GraphQLError:
    """The one error a limit answers with."""
    extensions: dict[str, Any] = {"code": "LIMIT_EXCEEDED", "setting": setting, "limit": limit}
    if found is not None:
        extensions["found"] = found
    return GraphQLError(f"{what}: the limit is {limit:,} ({setting})", extensions=extensions)


# -- the document: depth, root fields, aliases, literal arguments (validated once per text) ------


class _Shape(NamedTuple):
    fields: int  # fields at this level (fragments expanded)
    depth: int  # levels of fields below this one
    aliases: int


class _Measure:
    """Shapes of selection sets, each fragment measured once (no exponential walk)."""

    def __init__(self, document: DocumentNode) -> None:
        self.fragments = {d.name.value: d for d in document.definitions
                          if isinstance(d, FragmentDefinitionNode)}
        self.memo: dict[str, _Shape] = {}

    def of(self, node: SelectionSetNode | None) -> _Shape:
        fields = depth = aliases = 0
        for sel in node.selections if node else ():
            if isinstance(sel, FieldNode):
                if sel.name.value == "__typename":
                    continue
                fields += 1
                aliases += sel.alias is not None
                if sel.selection_set is not None and not sel.name.value.startswith("__"):
                    below = self.of(sel.selection_set)
                    depth = max(depth, 1 + below.depth)
                    aliases += below.aliases
            else:
                if isinstance(sel, InlineFragmentNode):
                    shape = self.of(sel.selection_set)
                elif isinstance(sel, FragmentSpreadNode):
                    shape = self.fragment(sel.name.value)
                else:
                    continue
                fields += shape.fields
                depth = max(depth, shape.depth)
                aliases += shape.aliases
        return _Shape(fields, depth, aliases)

    def fragment(self, name: str) -> _Shape:
        if name not in self.memo:
            self.memo[name] = _Shape(0, 0, 0)  # a cycle (refused by validation) adds nothing
            definition = self.fragments.get(name)
            if definition is not None:
                self.memo[name] = self.of(definition.selection_set)
        return self.memo[name]


@functools.cache
def document_rule(limits: Limits) -> type[ValidationRule]:
    """One rule class per set of limits, created once (see the module docstring)."""

    class DocumentLimits(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.reported_argument = False
            measure = _Measure(context.document)
            for op in context.document.definitions:
                if not isinstance(op, OperationDefinitionNode):
                    continue
                shape = measure.of(op.selection_set)
                if shape.depth > limits.depth:
                    context.report_error(refusal(
                        f"the operation nests {shape.depth} levels deep", "DEVLOG_MAX_QUERY_DEPTH",
                        limits.depth, shape.depth))
                if shape.fields > limits.root_fields:
                    context.report_error(refusal(
                        f"the operation asks for {shape.fields:,} root fields",
                        "DEVLOG_MAX_ROOT_FIELDS", limits.root_fields, shape.fields))
                if shape.aliases > limits.aliases:
                    context.report_error(refusal(
                        f"the operation uses {shape.aliases:,} aliases", "DEVLOG_MAX_ALIASES",
                        limits.aliases, shape.aliases))

        def _exempt(self) -> bool:
            t = self.context.get_input_type()
            return t is not None and get_named_type(t).name in EXEMPT_TYPES

        def _argument(self, what: str, setting: str, limit: int, found: int) -> None:
            if not self.reported_argument and not self._exempt():
                self.reported_argument = True
                self.report_error(refusal(what, setting, limit, found))

        def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
            if len(node.value) > limits.text:
                self._argument(f"a text argument is {len(node.value):,} characters long",
                               "DEVLOG_MAX_TEXT_ARGUMENT", limits.text, len(node.value))

        def enter_list_value(self, node: ListValueNode, *_: Any) -> None:
            if len(node.values) > limits.items:
                self._argument(f"a list argument has {len(node.values):,} items",
                               "DEVLOG_MAX_LIST_ARGUMENT", limits.items, len(node.values))

        def enter_object_value(self, node: ObjectValueNode, *_: Any) -> None:
            if len(node.fields) > limits.items:
                self._argument(f"an input object has {len(node.fields):,} fields",
                               "DEVLOG_MAX_LIST_ARGUMENT", limits.items, len(node.fields))

    return DocumentLimits


@functools.lru_cache(maxsize=512)
def _parse(query: str, max_tokens: int) -> DocumentNode:
    return parse(query, max_tokens=max_tokens)


def parse_within(query: str, limits: Limits) -> DocumentNode:
    try:
        return _parse(query, limits.query_tokens)
    except GraphQLError as exc:
        if "tokens. Parsing aborted" in exc.message:
            raise refusal(f"the document has more than {limits.query_tokens:,} tokens",
                          "DEVLOG_MAX_QUERY_TOKENS", limits.query_tokens) from None
        raise


# -- variables (per request) ---------------------------------------------------------------------


def check_variables(operation: OperationDefinitionNode, variables: dict[str, Any] | None,
                    limits: Limits) -> None:
    """Text and list limits on the declared variables' values (ingest batches exempt)."""
    if not variables:
        return
    stack: list[tuple[str, Any]] = []
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        t = definition.type
        while not hasattr(t, "name"):
            t = t.type  # NonNull / List wrappers
        if t.name.value not in EXEMPT_TYPES and name in variables:
            stack.append((f"${name}", variables[name]))
    budget = 10 * limits.items  # values visited in all: nested lists cannot multiply the work
    while stack:
        path, value = stack.pop()
        budget -= 1
        if budget < 0:
            raise refusal("the variables hold too many values", "DEVLOG_MAX_LIST_ARGUMENT",
                          limits.items)
        if isinstance(value, str):
            if len(value) > limits.text:
                raise refusal(f"{path} is {len(value):,} characters long",
                              "DEVLOG_MAX_TEXT_ARGUMENT", limits.text, len(value))
        elif isinstance(value, list):
            if len(value) > limits.items:
                raise refusal(f"{path} has {len(value):,} items", "DEVLOG_MAX_LIST_ARGUMENT",
                              limits.items, len(value))
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(value))
        elif isinstance(value, dict):
            if len(value) > limits.items:
                raise refusal(f"{path} has {len(value):,} fields", "DEVLOG_MAX_LIST_ARGUMENT",
                              limits.items, len(value))
            stack.extend((f"{path}.{k}", v) for k, v in value.items())


# -- the extension ---------------------------------------------------------------------------------


class OperationLimits(SchemaExtension):
    """Size and token limits (and the parse cache), the document rule, the cost estimate and
    the variables check, and the read deadline of a query."""

    def _limits(self) -> Limits:
        settings = getattr(self.execution_context.context, "settings", None)
        return Limits.of(settings) if isinstance(settings, Settings) else DEFAULT

    def on_operation(self) -> Iterator[None]:
        ec = self.execution_context
        limits = self._limits()
        query = ec.query or ""
        size = len(query) if query.isascii() else len(query.encode("utf-8", "surrogatepass"))
        if size > limits.query_bytes:
            raise refusal(f"the document is {size:,} bytes", "DEVLOG_MAX_QUERY_BYTES",
                          limits.query_bytes, size)
        ec.validation_rules = (*ec.validation_rules, document_rule(limits))
        yield

    def on_parse(self) -> Iterator[None]:
        ec = self.execution_context
        if ec.graphql_document is None and ec.query:
            ec.graphql_document = parse_within(ec.query, self._limits())
        yield

    def on_execute(self) -> Iterator[None]:
        ec = self.execution_context
        limits = self._limits()
        document = ec.graphql_document
        operation = _operation(document, ec.operation_name) if document else None
        if operation is None:
            yield
            return
        check_variables(operation, ec.variables, limits)
        if operation.operation is not OperationType.QUERY:
            yield  # mutations (ingest) are bounded by their own limits; subscriptions live on
            return
        fragments = {d.name.value: d for d in document.definitions
                     if isinstance(d, FragmentDefinitionNode)}
        cost = query_cost(ec.schema._schema, operation, fragments, ec.variables)
        if cost is not None and cost > limits.cost:
            raise refusal(f"the answer could hold {cost:,} values (estimated from `first` and "
                          "list sizes); ask for smaller pages or fewer nested lists",
                          "DEVLOG_MAX_QUERY_COST", limits.cost, cost)
        with reads.budget():
            yield


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return ops[0] if len(ops) == 1 else None
    return next((op for op in ops if op.name and op.name.value == name), None)
