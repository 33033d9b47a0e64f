"""Long work takes turns with other requests on the event loop (app/turns.py): other tasks run
while a long conversion or a long GraphQL list is in progress, not only after it."""

from __future__ import annotations

import asyncio
import time

import strawberry

from app import turns
from app.gql.cooperative import CooperativeExecution


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def _ran_meanwhile(work) -> bool:  # noqa: ANN001
    """Whether another task got the loop while ``work`` (a coroutine) was running."""
    done = False
    ticks_during = 0

    async def other() -> None:
        nonlocal ticks_during
        while not done:
            ticks_during += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(other())
    await asyncio.sleep(0)  # the other task is running
    ticks_before = ticks_during
    await work
    done = True
    await task
    return ticks_during > ticks_before + 1


async def test_a_long_map_takes_turns() -> None:
    items = list(range(40))  # 40 ms of work, in 1 ms slices
    assert await _ran_meanwhile(turns.map_in_turns(lambda i: busy(0.001) or i, items))

    async def plain() -> list[int]:
        return [busy(0.001) or i for i in items]

    assert not await _ran_meanwhile(plain())  # what it replaces: nobody else runs


@strawberry.type
class Item:
    @strawberry.field
    def n(self) -> int:
        busy(0.0002)
        return 1


ORDER: list[str] = []


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return [Item() for _ in range(200)]  # 40 ms of field work

    @strawberry.field
    async def a(self) -> int:
        ORDER.append("a+")
        await asyncio.sleep(0.01)
        ORDER.append("a-")
        return 1

    @strawberry.field
    async def b(self) -> int:
        ORDER.append("b+")
        await asyncio.sleep(0)
        ORDER.append("b-")
        return 2


COOPERATIVE = strawberry.Schema(Query, execution_context_class=CooperativeExecution)
PLAIN = strawberry.Schema(Query)


async def test_a_long_graphql_list_takes_turns() -> None:
    result: list = []

    async def run(schema: strawberry.Schema) -> None:
        result.append(await schema.execute("{ items { n } }"))

    assert await _ran_meanwhile(run(COOPERATIVE))
    assert not result[-1].errors and len(result[-1].data["items"]) == 200
    assert not await _ran_meanwhile(run(PLAIN))


async def test_root_fields_of_a_query_run_one_after_another() -> None:
    ORDER.clear()
    assert (await COOPERATIVE.execute("{ a b }")).data == {"a": 1, "b": 2}
    assert ORDER == ["a+", "a-", "b+", "b-"]
    ORDER.clear()
    assert (await PLAIN.execute("{ a b }")).data == {"a": 1, "b": 2}
    assert ORDER != ["a+", "a-", "b+", "b-"]  # graphql-core's own way: side by side


async def test_turns_are_polite_only_when_others_wait() -> None:
    before = turns.waiting_for_answers()
    assert turns._pause() == (turns.POLITE_SECONDS if before > 1 else 0)
    turns.request_waiting(+1)
    turns.request_waiting(+1)
    try:
        assert turns._pause() == turns.POLITE_SECONDS
    finally:
        turns.request_waiting(-2)
    assert turns.waiting_for_answers() == before


async def test_a_big_answer_arrives_whole_over_http(client) -> None:  # noqa: ANN001
    """Written in pieces of 64 KB with turns between them (app/http_turns.py)."""
    import uuid

    from app.ingest.identity import session_id
    from tests.factories import INGEST, MACHINE, event
    from tests.helpers import gql

    native = f"turns-{uuid.uuid4().hex[:8]}"
    texts = [f"{i:04d}" + "y" * 2_000 for i in range(200)]
    await gql(client, INGEST, {"batch": {"events": [event(native, i, "assistant_message", content=t)
                                                    for i, t in enumerate(texts)], "machines": [MACHINE]}})
    waiting = turns.waiting_for_answers()
    response = await client.post("/graphql", json={"query": """query($f: EventFilterInput) {
        events(filter: $f, first: 200) { edges { node { content } } } }""",
        "variables": {"f": {"session": str(session_id("claude-code", native))}}})
    assert int(response.headers["content-length"]) == len(response.content) > 4 * 64 * 1024
    got = {e["node"]["content"] for e in response.json()["data"]["events"]["edges"]}
    assert got == set(texts)
    assert turns.waiting_for_answers() == waiting
