"""Long Python work takes turns with the other requests on the event loop.

The server is one asyncio loop: while one request converts thousands of rows or completes a
long GraphQL list, nobody else is answered. Work over many items goes through these helpers,
which give the loop a turn (``asyncio.sleep(0)``) whenever ``SLICE_SECONDS`` have been spent
since the last one — so another request waits about one slice, not the whole job. The clock is
read once per item (~60 ns); lists done within a slice never yield.
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


async def taking_turns(items: Iterable[T]) -> AsyncIterator[T]:
    """The items, with a turn for the loop whenever a slice has been used (between items,
    including the consumer's work on the previous one)."""
    last = time.perf_counter()
    for item in items:
        if time.perf_counter() - last > SLICE_SECONDS:
            await asyncio.sleep(0)
            last = time.perf_counter()
        yield item


async def map_in_turns(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``[fn(x) for x in items]``, taking turns."""
    out: list[R] = []
    last = time.perf_counter()
    for item in items:
        out.append(fn(item))
        if time.perf_counter() - last > SLICE_SECONDS:
            await asyncio.sleep(0)
            last = time.perf_counter()
    return out


async def chunks_in_turns(items: list[Any], size: int) -> AsyncIterator[list[Any]]:
    """``items`` in slices of ``size``, with a turn for the loop after each."""
    for i in range(0, len(items), size):
        yield items[i:i + size]
        if i + size < len(items):
            await asyncio.sleep(0)


def freeze_startup_heap() -> None:
    """Leave what start-up built (modules, the GraphQL schema, the app) out of the garbage
    collector's full collections: they scanned it all, ~100k objects, in 60–100 ms pauses of
    the whole server whenever a big answer had allocated enough; after this, 3–5 ms."""
    gc.collect()
    gc.freeze()
