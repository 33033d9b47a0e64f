"""Long Python work takes turns with the other requests on the event loop.

The server is one asyncio loop: while one request converts thousands of rows or completes a
long GraphQL list, nobody else is answered. Work over many items goes through these helpers,
which give the loop a turn whenever ``SLICE_SECONDS`` have been spent since the last one — so
another request waits about one slice, not the whole job. The clock is read once per item
(~60 ns); lists done within a slice never yield.

A turn is ``asyncio.sleep(0)`` when this request is the only one waiting for its answer, and a
pause of ``POLITE_SECONDS`` when others are (``waiting_for_answers()``, counted by
``app.http_turns``): a bare ``sleep(0)`` lets only what is ready run, while the other
requests are mostly a moment away from ready (their statement's answer is on its way) and
would then wait a whole slice at each of their steps. Measured with ``bench/abuse.py``: a
small query's p95 beside an abusive client 59 → 17 ms with pauses (idle: 8 ms); a heavy
answer alone is as fast as before.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

SLICE_SECONDS = 0.001
POLITE_SECONDS = 0.0005

_waiting = 0  # HTTP requests that have not started their answer yet


def request_waiting(delta: int) -> None:
    """+1 when a request arrives, -1 when its answer starts (or it ends)."""
    global _waiting
    _waiting += delta


def waiting_for_answers() -> int:
    return _waiting


def _pause() -> float:
    return POLITE_SECONDS if _waiting > 1 else 0


async def pause() -> None:
    """One turn (see the module docstring)."""
    await asyncio.sleep(_pause())


async def taking_turns(items: Iterable[T]) -> AsyncIterator[T]:
    """The items, with a turn for the loop whenever a slice has been used (between items,
    including the consumer's work on the previous one)."""
    last = time.perf_counter()
    for item in items:
        if time.perf_counter() - last > SLICE_SECONDS:
            await asyncio.sleep(_pause())
            last = time.perf_counter()
        yield item


async def map_in_turns(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``[fn(x) for x in items]``, taking turns."""
    out: list[R] = []
    last = time.perf_counter()
    for item in items:
        out.append(fn(item))
        if time.perf_counter() - last > SLICE_SECONDS:
            await asyncio.sleep(_pause())
            last = time.perf_counter()
    return out


async def chunks_in_turns(items: list[Any], size: int) -> AsyncIterator[list[Any]]:
    """``items`` in slices of ``size``, with a turn for the loop after each."""
    for i in range(0, len(items), size):
        yield items[i:i + size]
        if i + size < len(items):
            await asyncio.sleep(_pause())


def freeze_startup_heap() -> None:
    """Leave what start-up built (modules, the GraphQL schema, the app) out of the garbage
    collector's full collections: they scanned it all, ~100k objects, in 60–100 ms pauses of
    the whole server whenever a big answer had allocated enough; after this, 3–5 ms."""
    gc.collect()
    gc.freeze()
