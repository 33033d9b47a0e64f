"""Live updates in one process: eventAdded and sessionUpdated over a real WebSocket, and the
overflow rule for slow subscribers."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
import websockets

from app.bus import Overflow, Subscriber
from app.live_filters import EventSelector
from app.ingest.identity import session_id
from tests.factories import INGEST, MACHINE, conversation, event
from tests.helpers import gql


async def subscribe(ws, sub_id: str, query: str, variables: dict | None = None) -> None:
    await ws.send(json.dumps({"id": sub_id, "type": "subscribe",
                              "payload": {"query": query, "variables": variables or {}}}))


async def next_payload(ws, timeout: float = 10) -> dict:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if message["type"] == "ping":
            await ws.send(json.dumps({"type": "pong"}))
            continue
        return message


async def open_ws(base: str, headers: dict | None = None, params: dict | None = None):
    ws = await websockets.connect(base.replace("http://", "ws://") + "/graphql",
                                  subprotocols=["graphql-transport-ws"], additional_headers=headers)
    await ws.send(json.dumps({"type": "connection_init", "payload": params or {}}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    return ws


async def test_event_and_session_subscriptions(server: str) -> None:
    native = f"live-{uuid.uuid4()}"
    async with httpx.AsyncClient(base_url=server) as client:
        await gql(client, INGEST, {"batch": {"events": [event(native, 0, "session_start")], "machines": [MACHINE]}})
        ws = await open_ws(server)
        try:
            sid = str(session_id("claude-code", native))
            await subscribe(ws, "e", "subscription($f: EventFilterInput) { eventAdded(filter: $f) { kind seq content session { nativeId } } }",
                            {"f": {"session": sid, "kinds": ["user_prompt", "assistant_message"]}})
            await subscribe(ws, "s", "subscription($id: ID) { sessionUpdated(filter: {session: $id}) { nativeId eventCount promptCount } }",
                            {"id": sid})
            await asyncio.sleep(0.3)  # let both subscriptions register
            events = conversation(native, turns=1)[1:]  # prompt, llm, tool call/result, message
            body = await gql(client, INGEST, {"batch": {"events": events, "machines": [MACHINE]}})
            assert body["data"]["ingestEvents"]["accepted"] == 5
            got: dict[str, list] = {"e": [], "s": []}
            while len(got["e"]) < 2 or not got["s"]:
                msg = await next_payload(ws)
                assert msg["type"] == "next", msg
                got[msg["id"]].append(next(iter(msg["payload"]["data"].values())))
            assert [(e["kind"], e["seq"]) for e in got["e"]] == [("user_prompt", 1), ("assistant_message", 5)]
            assert got["e"][0]["session"] == {"nativeId": native}
            assert got["s"][-1] == {"nativeId": native, "eventCount": 6, "promptCount": 1}
            # a duplicate batch commits nothing new, so nothing is announced
            await gql(client, INGEST, {"batch": {"events": events, "machines": [MACHINE]}})
            with pytest.raises(asyncio.TimeoutError):
                await next_payload(ws, timeout=1.0)
        finally:
            await ws.close()


async def test_slow_subscriber_is_closed_not_waited_for() -> None:
    sub = Subscriber(EventSelector(), maxsize=3)
    sub.offer([1, 2])
    sub.offer([3, 4, 5])  # the fourth item overflows: closed, never blocks the caller
    assert sub.closed and sub.dropped == 2
    sub.offer([6])  # ignored once closed
    assert [await sub.get() for _ in range(3)] == [1, 2, 3]  # what it held is still delivered
    with pytest.raises(Overflow, match="resubscribe"):
        await sub.get()


async def test_close_owned_ends_only_that_owners_subscriptions() -> None:
    """The hook for revoked keys: one owner's subscriptions end with the given reason, without
    delivering what they hold; the others go on."""
    from types import SimpleNamespace

    from app.bus import Bus, Closed, Delivery

    bus = Bus("postgresql://unused")  # not entered: no connection needed to subscribe
    e1, e2 = SimpleNamespace(session_id=1), SimpleNamespace(session_id=1)
    with bus.subscribe(EventSelector(), owner="key-1") as a, \
            bus.subscribe(EventSelector(), owner="key-2") as b:
        await bus.fan_out(Delivery(at=None, events=[e1, e2], sessions={}))  # type: ignore[list-item]
        assert bus.close_owned("key-1", Closed("the API key was revoked")) == 1
        with pytest.raises(Closed, match="revoked"):
            await a.get()
        assert a.dropped == 2
        assert [await b.get(), await b.get()] == [e1, e2]
    assert bus.subscriber_count == 0
