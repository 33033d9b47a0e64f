"""Subscription results computed once per event and shared by every subscriber that asks alike.

graphql-core executes a subscription's selection set once per event and per subscriber. When
many subscribers run the same operation with the same variables (dashboards, a fleet of one
client), that work is the same each time: resolving the fields and encoding the JSON. The live
subscriptions hand every subscriber the same object for one event (built once per delivery and
marked with :func:`shareable`). :class:`SharedResultsExecutor` keeps, on that object, the result
of each (operation text, operation name, variables): the first subscriber computes it, the others
get the same result, its data already encoded (``msgspec.Raw``: the transport's msgspec encoder
splices the bytes in).

What a result holds depends only on the operation and its variables: whether a caller may see
it at all is decided by the root field's permission when the subscription starts. A field whose
value came to depend on the caller (a per-principal rule) would have to add the caller to
``_share_key``.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any, TypeVar

import msgspec
from graphql import ExecutionResult, OperationType
from graphql.pyutils import Undefined
from app.gql.cooperative import CooperativeExecution

T = TypeVar("T")

_RESULTS = "_devlog_shared_results"

# Selection sets executed for shared live objects (by operation type name); tests read it.
EXECUTIONS: collections.Counter[str] = collections.Counter()


def shareable(obj: T) -> T:
    """Mark ``obj`` (a live event or session handed to many subscribers) as one whose results
    may be shared."""
    setattr(obj, _RESULTS, {})
    return obj


class SharedResultsExecutor(CooperativeExecution):
    _share: tuple | None

    def build_per_event_executor(self, payload: Any) -> Any:
        if not hasattr(self, "_share"):
            self._share = self._share_key()  # once per subscription; the copies inherit it
        results = getattr(payload, _RESULTS, None)
        if results is not None and self._share is not None:
            hit = results.get(self._share)
            if hit is not None:  # computed for another subscriber: no executor to build
                return _Replay(hit)
        return super().build_per_event_executor(payload)

    def execute_operation(self, serially: bool | None = None) -> Any:
        results = getattr(self.root_value, _RESULTS, None)
        key = getattr(self, "_share", None)
        if results is None or key is None or self.operation.operation is not OperationType.SUBSCRIPTION:
            return super().execute_operation(serially)
        hit = results.get(key)
        if hit is None:
            EXECUTIONS[type(self.root_value).__name__] += 1
            result = super().execute_operation(serially)
            if self.is_awaitable(result):
                hit = results[key] = asyncio.ensure_future(_encoded_later(result))
            else:
                hit = results[key] = _encoded(result)
        return _Replay(hit).execute_operation(serially)

    def _share_key(self) -> tuple | None:
        op = self.operation
        if op.loc is None:
            return None
        variables = {name: source.value for name, source in self.variable_values.sources.items()
                     if source.value is not Undefined}
        try:
            encoded = msgspec.json.encode(variables, order="sorted")
        except (TypeError, msgspec.EncodeError):
            return None
        return (op.loc.source.body, op.name.value if op.name else None, encoded)


class _Replay:
    """What graphql-core runs for an event whose result is already known (or being computed)."""

    __slots__ = ("hit",)

    def __init__(self, hit: Any) -> None:
        self.hit = hit

    def execute_operation(self, serially: bool | None = None) -> Any:
        if isinstance(self.hit, asyncio.Future):
            if self.hit.done():
                return self.hit.result()
            return asyncio.shield(self.hit)  # a subscriber leaving does not cancel the others'
        return self.hit


async def _encoded_later(result: Any) -> Any:
    return _encoded(await result)


def _encoded(result: Any) -> Any:
    """The same result, its data encoded once (a result with errors is kept as it is)."""
    if isinstance(result, ExecutionResult) and not result.errors and result.data is not None:
        try:
            return ExecutionResult(data=msgspec.Raw(msgspec.json.encode(result.data)),
                                   extensions=result.extensions)
        except (TypeError, msgspec.EncodeError):
            return result
    return result
