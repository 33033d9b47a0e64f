"""Live updates to many subscribers at once, over real WebSockets and real SSE streams.

- Subscribers with different filters (and several with the same one) each receive exactly the
  events and sessions they asked for: none missing, none extra, in commit order.
- The work of a delivery does not grow with the number of streams: each SSE fragment is rendered
  once per event (counted by ``ui.pages.live.RENDERS``), and subscriptions running the same
  operation share one execution per event (``app.gql.live_results.EXECUTIONS``).
- A subscriber that falls behind is still closed with an error (a separate ``devlog serve`` with
  a queue of 5, a client that does not read).
"""

from __future__ import annotations

import asyncio
import collections
import gc
import json
import re
import signal
import socket
import subprocess
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import websockets

from app.bus import Bus
from app.gql import live_results
from app.ingest.identity import project_id as project_id_of
from app.ingest.identity import project_key, session_id
from app.services import keys
from tests.app.test_live import next_payload
from tests.e2e.test_serve import _wait_ready
from tests.factories import INGEST, MACHINE, event
from tests.helpers import devlog_cmd, free_port, subprocess_env
from ui.pages import live as live_pages

EVENT_FIELDS = "seq kind session { nativeId }"


def running_bus() -> Bus:
    """The in-process server's bus (the ``server`` fixture runs the app in this process)."""
    gc.unfreeze()  # the app froze its start-up heap (app/turns.py): frozen objects are not listed
    buses = [o for o in gc.get_objects() if type(o) is Bus and o.ready.is_set()]
    assert len(buses) == 1, buses
    return buses[0]


async def wait_for(predicate, what: str, timeout: float = 20.0) -> None:  # noqa: ANN001
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


class Key:
    """An API key for ingest (other tests of the run may have created keys: then ingest needs one)."""

    async def __aenter__(self) -> dict:
        self.record, secret = await keys.create(f"fanout-{uuid.uuid4().hex[:6]}")
        return {"Authorization": f"Bearer {secret}"}

    async def __aexit__(self, *exc: object) -> None:
        await keys.revoke(self.record.name)


async def ingest(client: httpx.AsyncClient, events: list[dict], headers: dict) -> None:
    body = {"query": INGEST, "variables": {"batch": {"events": events, "machines": [MACHINE]}}}
    response = await client.post("/graphql", json=body, headers=headers)
    result = response.json()["data"]["ingestEvents"]
    assert result["accepted"] == len(events) and not result["rejected"], result


# ---------------------------------------------------------------------------- the scenario


class World:
    """Six sessions over two projects, two agents, two workspaces; batches that mix them."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        self.projects = {p: {"remote": f"git@github.com:fanout-{tag}/{p}.git", "branch": "main"}
                         for p in ("A", "B")}
        self.sessions = [  # (native id, agent, project, workspace)
            (f"fan-{tag}-{i}", agent, project, f"/home/dev/{tag}/{project}{i % 2}")
            for i, (agent, project) in enumerate([
                ("claude-code", "A"), ("codex", "A"), ("claude-code", "B"),
                ("codex", "B"), ("claude-code", "A"), ("codex", "B")])]
        start = datetime.now(UTC) - timedelta(hours=1)
        kinds = ["user_prompt", "llm_call", "tool_call", "tool_result", "assistant_message"]
        self.events: list[dict] = []  # in the order they are sent
        tick = 0
        for n in range(10):  # ten events per session, interleaved across sessions
            for native, agent, project, ws in self.sessions:
                kind = kinds[n % 5]
                fields: dict = {"project": self.projects[project], "workspace": ws}
                if kind == "llm_call":
                    fields |= {"model": "claude-sonnet-4-5", "tokens": {"input": 5, "output": 7}}
                elif kind == "tool_call":
                    fields |= {"toolName": "Edit" if n % 2 else "Bash", "toolCallId": f"t{n}"}
                elif kind == "tool_result":
                    fields |= {"toolName": "Edit" if n % 2 else "Bash", "toolCallId": f"t{n - 1}",
                               "status": "error" if n in (3, 8) and agent == "codex" else "ok"}
                else:
                    fields |= {"content": f"{kind} {n} of {native}"}
                # distinct times, so commit order is the order of this list within a batch
                self.events.append(event(native, n, kind, agent=agent,
                                         ts=start + timedelta(milliseconds=10 * tick), **fields))
                tick += 1
        self.batches = [self.events[i:i + 7] for i in range(0, len(self.events), 7)]
        self.cut = self.events[len(self.events) // 2]["ts"]  # for since/until filters

    def sid(self, i: int) -> str:
        return str(session_id(self.sessions[i][1], self.sessions[i][0]))

    def info(self, native: str) -> tuple[str, str, str]:
        for n, agent, project, ws in self.sessions:
            if n == native:
                return agent, project, ws
        raise KeyError(native)

    def matching(self, batch: list[dict], *, session: int | None = None, project: str | None = None,
                 agent: str | None = None, kinds: set | None = None, tool: str | None = None,
                 status: str | None = None, workspace: str | None = None,
                 since: str | None = None, until: str | None = None) -> list[tuple[str, int]]:
        out = []
        for e in batch:
            e_agent, e_project, e_ws = self.info(e["session"])
            if ((session is None or e["session"] == self.sessions[session][0])
                    and (project is None or e_project == project)
                    and (agent is None or e_agent == agent)
                    and (kinds is None or e["kind"] in kinds)
                    and (tool is None or e.get("toolName") == tool)
                    and (status is None or e.get("status") == status)
                    and (workspace is None or e_ws == workspace)
                    and (since is None or e["ts"] >= since)
                    and (until is None or e["ts"] < until)):
                out.append((e["session"], e["seq"]))
        return out


async def test_many_subscribers_each_get_exactly_their_events_and_work_is_shared(
        server: str, database_url: str) -> None:
    w = World()
    ws_url = server.replace("http://", "ws://") + "/graphql"

    async with Key() as auth, httpx.AsyncClient(base_url=server, timeout=30) as client:
        project_id = {name: str(project_id_of(project_key(spec["remote"], None, MACHINE["key"])[0]))
                      for name, spec in w.projects.items()}

        # ---- WebSocket subscriptions: (name, query, variables, expected per batch)
        sub_events = f"subscription($f: EventFilterInput) {{ eventAdded(filter: $f) {{ {EVENT_FIELDS} }} }}"
        plans: list[tuple[str, str, dict, dict]] = []
        for i in range(len(w.sessions)):
            for copy in range(3):  # three subscribers with the very same operation
                plans.append((f"session{i}.{copy}", sub_events, {"f": {"session": w.sid(i)}},
                              {"session": i}))
        for p in ("A", "B"):
            plans.append((f"project{p}", sub_events, {"f": {"project": project_id[p]}}, {"project": p}))
        plans += [
            ("errorsA", sub_events, {"f": {"project": project_id["A"], "kinds": ["tool_result"],
                                           "status": "error"}},
             {"project": "A", "kinds": {"tool_result"}, "status": "error"}),
            ("errorsB", sub_events, {"f": {"project": project_id["B"], "kinds": ["tool_result"],
                                           "status": "error"}},
             {"project": "B", "kinds": {"tool_result"}, "status": "error"}),
            ("codexCalls", sub_events, {"f": {"project": project_id["B"], "agent": ["codex"],
                                              "kinds": ["llm_call"]}},
             {"project": "B", "agent": "codex", "kinds": {"llm_call"}}),
            ("editsA", sub_events, {"f": {"project": project_id["A"], "toolName": "Edit"}},
             {"project": "A", "tool": "Edit"}),
            ("talk0", sub_events, {"f": {"session": w.sid(0), "kinds": ["user_prompt", "assistant_message"]}},
             {"session": 0, "kinds": {"user_prompt", "assistant_message"}}),
            ("untilB", sub_events, {"f": {"project": project_id["B"], "until": w.cut}},
             {"project": "B", "until": w.cut}),
            ("sinceA", sub_events, {"f": {"project": project_id["A"], "since": w.cut}},
             {"project": "A", "since": w.cut}),
        ]
        for copy in range(3):  # literal filter, not variables: shared just the same
            plans.append((f"inlineB.{copy}", "subscription { eventAdded(filter: {project: \"%s\"}) "
                          "{ %s } }" % (project_id["B"], EVENT_FIELDS), {}, {"project": "B"}))
        sub_sessions = ("subscription($f: SessionWatchInput) { sessionUpdated(filter: $f) "
                        "{ nativeId eventCount } }")
        session_plans = [
            ("sess1", sub_sessions, {"f": {"session": w.sid(1)}}, lambda s: s == 1),
            ("sessA", sub_sessions, {"f": {"project": project_id["A"]}},
             lambda s: w.sessions[s][2] == "A"),
            ("sessCodexB", sub_sessions, {"f": {"project": project_id["B"], "agent": ["codex"]}},
             lambda s: w.sessions[s][2] == "B" and w.sessions[s][1] == "codex"),
        ]

        bus = running_bus()
        before_subs = bus.subscriber_count
        sockets = []
        by_name: dict[str, list] = collections.defaultdict(list)
        # spread over a few connections, several subscriptions on each
        all_plans = plans + [(n, q, v, None) for n, q, v, _ in session_plans]
        for start in range(0, len(all_plans), 8):
            ws = await websockets.connect(ws_url, subprotocols=["graphql-transport-ws"])
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            for name, query, variables, _ in all_plans[start:start + 8]:
                await ws.send(json.dumps({"id": name, "type": "subscribe",
                                          "payload": {"query": query, "variables": variables}}))
            sockets.append(ws)

        # ---- SSE streams: several of each kind, all on the same page content
        overview_n, session_n, rows_n = 4, 3, 3
        rows_ids = {w.sid(1), w.sid(2)}
        paths = (["/live/overview"] * overview_n + [f"/live/sessions/{w.sid(0)}"] * session_n
                 + ["/live/sessions?ids=" + ",".join(sorted(rows_ids))] * rows_n)
        sse_client = httpx.AsyncClient(base_url=server, timeout=httpx.Timeout(30, read=None))
        streams = []
        sse_got: list[list[tuple[str, str]]] = [[] for _ in paths]

        async def read_sse(i: int, response: httpx.Response) -> None:
            event_type, data = None, []
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    event_type = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].removeprefix(" "))
                elif line == "" and event_type is not None:
                    sse_got[i].append((event_type, "\n".join(data)))
                    event_type, data = None, []

        readers = []
        for i, path in enumerate(paths):
            response = await sse_client.send(sse_client.build_request("GET", path), stream=True)
            assert response.status_code == 200
            assert "content-encoding" not in response.headers  # the same bytes to every stream
            streams.append(response)  # the response arrived: the stream is subscribed
            readers.append(asyncio.create_task(read_sse(i, response)))

        n_subs = len(all_plans) + len(paths)
        await wait_for(lambda: bus.subscriber_count - before_subs >= n_subs, "every subscription")

        renders_before = collections.Counter(live_pages.RENDERS)
        executions_before = collections.Counter(live_results.EXECUTIONS)
        received: dict[str, list] = by_name

        async def read_ws(ws) -> None:  # noqa: ANN001
            async for raw in ws:
                msg = json.loads(raw)
                if msg["type"] == "ping":
                    await ws.send(json.dumps({"type": "pong"}))
                    continue
                assert msg["type"] == "next", msg
                received[msg["id"]].append(next(iter(msg["payload"]["data"].values())))

        ws_readers = [asyncio.create_task(read_ws(ws)) for ws in sockets]
        try:
            for batch in w.batches:
                await ingest(client, batch, auth)

            # ---- expectations, batch by batch in commit order
            want_events = {name: [m for b in w.batches for m in w.matching(b, **spec)]
                           for name, _, _, spec in plans}
            counts: collections.Counter = collections.Counter()
            want_sessions: dict[str, list] = {name: [] for name, *_ in session_plans}
            for b in w.batches:
                touched = []
                for e in b:
                    counts[e["session"]] += 1
                    if e["session"] not in touched:
                        touched.append(e["session"])
                for name, _, _, pred in session_plans:
                    want_sessions[name] += [(n, counts[n]) for n in touched
                                            if pred([s[0] for s in w.sessions].index(n))]

            def complete() -> bool:
                return (all(len(received[n]) >= len(v) for n, v in want_events.items())
                        and all(len(received[n]) >= len(v) for n, v in want_sessions.items()))

            await wait_for(complete, "every WebSocket subscriber's events")
            # a last batch in a session nobody filters for: once the unfiltered overview streams
            # have it, every earlier delivery has been handed out (the bus delivers in order)
            last = event(f"fan-last-{uuid.uuid4().hex[:6]}", 0, "user_prompt", content="last",
                         ts=datetime.now(UTC) - timedelta(minutes=1))
            await ingest(client, [last], auth)
            await wait_for(lambda: all(any("last" in d for _, d in sse_got[i]) for i in range(overview_n)),
                           "the overview streams' last batch")
            await asyncio.sleep(0.3)  # let anything extra that was handed out arrive

            for name, want in want_events.items():
                got = [(e["session"]["nativeId"], e["seq"]) for e in received[name]]
                assert got == want, name
            for name, want in want_sessions.items():
                got = [(s["nativeId"], s["eventCount"]) for s in received[name]]
                # one update per delivery that touched a matching session (within a delivery, in
                # the order ingest listed them); the counts are read when the bus loads the
                # batch (a later batch may have committed by then), never going back
                assert collections.Counter(n for n, _ in got) == collections.Counter(n for n, _ in want), name
                for native in {n for n, _ in want}:
                    counts_seen = [c for n, c in got if n == native]
                    wanted = [c for n, c in want if n == native]
                    assert all(a <= b for a, b in zip(counts_seen, counts_seen[1:])), (name, counts_seen)
                    assert all(c >= c_want for c, c_want in zip(counts_seen, wanted)), (name, counts_seen)
                    assert counts_seen[-1] == wanted[-1], name

            # ---- SSE: what each stream got
            ids_of = {}  # (native, seq) -> stored event id
            natives = [(n, str(session_id(agent, n))) for n, agent, _, _ in w.sessions]
            natives.append((last["session"], str(session_id("claude-code", last["session"]))))
            for native, sid in natives:
                page = (await client.post("/graphql", json={
                    "query": "query($id: ID!) { session(id: $id) { events(first: 100) { edges { node { id seq } } } } }",
                    "variables": {"id": sid}})).json()
                for edge in page["data"]["session"]["events"]["edges"]:
                    ids_of[(native, edge["node"]["seq"])] = edge["node"]["id"]
            # A stream holding several deliveries when its turn comes sends them as one
            # message: each message covers a run of consecutive batches.
            batch_ids = [[ids_of[(e["session"], e["seq"])] for e in b] for b in w.batches]
            batch_ids.append([ids_of[(last["session"], 0)]])

            def runs(messages: list[list[str]], show) -> bool:  # noqa: ANN001
                """Do the messages, in order, show consecutive runs of all batches?"""
                at = 0
                for message in messages:
                    for k in range(1, len(batch_ids) - at + 1):
                        if message == show(batch_ids[at:at + k]):
                            at += k
                            break
                    else:
                        return False
                return at == len(batch_ids)

            def newest_first(run: list[list[str]]) -> list[str]:
                return [i for ids in run for i in ids][::-1][:live_pages.FEED_MAX]

            feed_messages = []
            for i in range(overview_n):
                feeds = [re.findall(r'<li id="f-([0-9a-f-]+)"', d) for t, d in sse_got[i] if t == "event"]
                assert runs(feeds, newest_first), f"overview stream {i}"
                feed_messages.append(feeds)
            s0_ids = {ids_of[(w.sessions[0][0], n)] for n in range(10)}
            timeline_want = [i for ids in batch_ids for i in ids if i in s0_ids]
            timeline_messages = []
            for i in range(overview_n, overview_n + session_n):
                got = [re.findall(r'<li id="e-([0-9a-f-]+)"', d) for t, d in sse_got[i] if t == "event"]
                assert [e for m in got for e in m] == timeline_want, f"session stream {i}"
                assert all(got) and all('id="session-header"' in d for t, d in sse_got[i] if t == "event")
                timeline_messages.append(got)
            sid_of = {n: str(session_id(agent, n)) for n, agent, _, _ in w.sessions}
            rows_per_batch = [{sid_of[e["session"]] for e in b} & rows_ids for b in w.batches]
            rows_messages = []
            for i in range(overview_n + session_n, len(paths)):
                got = [set(re.findall(r'<tr id="s-([0-9a-f-]+)"', d)) for t, d in sse_got[i] if t == "session"]
                assert all(got) and set().union(*got) == set().union(*rows_per_batch), f"rows {i}"
                assert len(got) <= sum(1 for r in rows_per_batch if r)
                rows_messages.append(got)

            # ---- rendered once per event (or session) and delivery, whatever the streams:
            # at most what one stream shows (another stream, merging deliveries, needs fewer)
            renders = live_pages.RENDERS - renders_before
            feed_items = sum(len(b[-live_pages.FEED_MAX:]) for b in w.batches) + 1  # + the last
            assert max(sum(map(len, f)) for f in feed_messages) <= renders["partials/_feed_item.html"] <= feed_items
            assert renders["partials/_event.html"] == len(timeline_want)  # not × session_n
            assert renders["partials/_session_header.html"] <= sum(1 for ids in batch_ids if s0_ids & set(ids))
            assert max(sum(map(len, r)) for r in rows_messages) <= renders["partials/_session_row.html"] \
                <= sum(len(r) for r in rows_per_batch)

            # ---- one execution per event and distinct operation (equal ones share it)
            distinct: dict[tuple, int] = {}
            for name, query, variables, _ in plans:
                distinct[(query, json.dumps(variables, sort_keys=True))] = len(want_events[name])
            executions = live_results.EXECUTIONS - executions_before
            assert executions["Event"] == sum(distinct.values())
            assert executions["Event"] < sum(len(v) for v in want_events.values())  # really shared
        finally:
            for t in ws_readers + readers:
                t.cancel()
            for ws in sockets:
                await ws.close()
            for response in streams:
                await response.aclose()
            await sse_client.aclose()
        await wait_for(lambda: bus.subscriber_count == before_subs, "subscribers gone after closing")


# ---------------------------------------------------------------------------- slow subscribers


@pytest.fixture
async def small_queue_server(database_url: str):
    """A `devlog serve` whose subscribers may fall 5 items behind."""
    port = free_port()
    env = subprocess_env(DEVLOG_DATABASE_URL=database_url, DEVLOG_LOG_LEVEL="warning",
                         DEVLOG_SUBSCRIBER_QUEUE="5", DEVLOG_JOBS="false")
    proc = subprocess.Popen(devlog_cmd("serve", "--port", str(port)), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        await asyncio.to_thread(_wait_ready, proc, f"http://127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _tiny_socket(port: int) -> socket.socket:
    """A client socket with a small receive buffer: a reader that does not read blocks the
    server's writes soon."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


def dechunk(body: bytes) -> bytes:
    """The payload of an HTTP/1.1 chunked body, as far as it has arrived."""
    out, at = [], 0
    while True:
        end = body.find(b"\r\n", at)
        if end < 0:
            return b"".join(out)
        size = int(body[at:end].split(b";")[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(body[end + 2:end + 2 + size])  # (cut short if not all here yet)
        at = end + 2 + size + 2


def _big_events(native: str, n: int) -> list[dict]:
    start = datetime.now(UTC) - timedelta(minutes=30)
    return [event(native, i, "assistant_message", ts=start + timedelta(seconds=i),
                  content=f"{i:04d} " + "x" * 200_000) for i in range(n)]


async def test_slow_websocket_subscriber_is_closed_with_an_error(small_queue_server: str) -> None:
    base = small_queue_server
    native = f"slow-ws-{uuid.uuid4().hex[:8]}"
    port = int(base.rsplit(":", 1)[1])
    ws = await websockets.connect(base.replace("http://", "ws://") + "/graphql",
                                  sock=_tiny_socket(port), subprotocols=["graphql-transport-ws"],
                                  max_size=None, compression=None)
    async with Key() as auth, httpx.AsyncClient(base_url=base, timeout=60) as client:
        try:
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            sid = str(session_id("claude-code", native))
            await ws.send(json.dumps({"id": "slow", "type": "subscribe", "payload": {
                "query": "subscription($f: EventFilterInput) { eventAdded(filter: $f) { seq content } }",
                "variables": {"f": {"session": sid}}}}))
            await ws.send(json.dumps({"id": "fast", "type": "subscribe", "payload": {
                "query": "subscription { health(everySeconds: 1) { database } }"}}))
            assert (await next_payload(ws))["id"] == "fast"  # both are running
            events = _big_events(native, 60)  # 12 MB for a reader that does not read
            for i in range(0, len(events), 5):
                await ingest(client, events[i:i + 5], auth)
            seqs, error = [], None
            while error is None:
                msg = await next_payload(ws, timeout=30)
                if msg["id"] != "slow":
                    continue
                assert msg["type"] == "next", msg
                if msg["payload"].get("errors"):
                    error = msg["payload"]
                else:
                    seqs.append(msg["payload"]["data"]["eventAdded"]["seq"])
            # the subscription ends with the reason as its GraphQL error, then completes
            assert error["data"] is None
            assert "fell more than 5 items behind" in error["errors"][0]["message"], error
            assert "resubscribe" in error["errors"][0]["message"]
            msg = await next_payload(ws, timeout=30)
            while msg["id"] != "slow":
                msg = await next_payload(ws, timeout=30)
            assert msg["type"] == "complete", msg
            assert seqs == list(range(len(seqs))) and len(seqs) < len(events)  # in order, a prefix
            # the connection and its other subscription live on
            msg = await next_payload(ws, timeout=30)
            while msg["id"] != "fast":
                msg = await next_payload(ws, timeout=30)
            assert msg["type"] == "next"
        finally:
            await ws.close()


async def test_slow_sse_stream_is_closed_with_a_reason(small_queue_server: str) -> None:
    base = small_queue_server
    native = f"slow-sse-{uuid.uuid4().hex[:8]}"
    port = int(base.rsplit(":", 1)[1])
    sid = str(session_id("claude-code", native))
    reader, writer = await asyncio.open_connection(sock=_tiny_socket(port))
    writer.write(f"GET /live/sessions/{sid} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")  # the stream is open, and subscribed
    assert head.startswith(b"HTTP/1.1 200"), head
    async with Key() as auth, httpx.AsyncClient(base_url=base, timeout=60) as client:
        events = _big_events(native, 40)  # one delivery each: a timeline item of 200 KB
        for e in events:
            await ingest(client, [e], auth)
    body = b""
    while not body.endswith(b"\r\n0\r\n\r\n"):  # everything, until the server ends the stream
        chunk = await asyncio.wait_for(reader.read(1 << 20), 60)
        assert chunk, "connection closed before the stream ended"
        body += chunk
    writer.close()
    text = dechunk(body).decode(errors="replace")
    items = [int(m) for m in re.findall(r"data: .*?(\d{4}) x{10}", text)]
    assert items == list(range(len(items))) and len(items) < len(events)  # in order, a prefix
    closing = re.findall(r"event: closed\r\ndata: (.*)\r\n", text)
    assert closing and "fell more than 5 items behind" in closing[0], text[-500:]


async def test_shared_results_reach_both_websocket_protocols(server: str) -> None:
    """One result per event for equal subscriptions, whether they speak graphql-transport-ws or
    the legacy graphql-ws (the shared data is spliced into each protocol's own message)."""
    native = f"proto-{uuid.uuid4().hex[:8]}"
    sid = str(session_id("claude-code", native))
    query = ("subscription($f: EventFilterInput) { eventAdded(filter: $f) "
             "{ seq content session { nativeId } } }")
    variables = {"f": {"session": sid}}
    ws_url = server.replace("http://", "ws://") + "/graphql"
    bus = running_bus()
    before = bus.subscriber_count
    modern = await websockets.connect(ws_url, subprotocols=["graphql-transport-ws"])
    legacy = await websockets.connect(ws_url, subprotocols=["graphql-ws"])
    try:
        await modern.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await modern.recv())["type"] == "connection_ack"
        await legacy.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await legacy.recv())["type"] == "connection_ack"
        for sub_id in ("a", "b"):
            await modern.send(json.dumps({"id": sub_id, "type": "subscribe",
                                          "payload": {"query": query, "variables": variables}}))
            await legacy.send(json.dumps({"id": sub_id, "type": "start",
                                          "payload": {"query": query, "variables": variables}}))
        await wait_for(lambda: bus.subscriber_count - before == 4, "four subscriptions")
        executions = collections.Counter(live_results.EXECUTIONS)
        start = datetime.now(UTC) - timedelta(minutes=5)
        events = [event(native, i, "user_prompt", ts=start + timedelta(seconds=i),
                        content=f'prompt {i} with "quotes" and ünïcode') for i in range(3)]
        async with Key() as auth, httpx.AsyncClient(base_url=server, timeout=30) as client:
            await ingest(client, events, auth)
        want = [{"eventAdded": {"seq": i, "content": f'prompt {i} with "quotes" and ünïcode',
                                "session": {"nativeId": native}}} for i in range(3)]
        for ws, kind in ((modern, "next"), (legacy, "data")):
            got: dict[str, list] = {"a": [], "b": []}
            while len(got["a"]) < 3 or len(got["b"]) < 3:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if msg["type"] in ("ping", "ka"):
                    continue
                assert msg["type"] == kind and set(msg["payload"]) == {"data"}, msg
                got[msg["id"]].append(msg["payload"]["data"])
            assert got == {"a": want, "b": want}, kind
        assert (live_results.EXECUTIONS - executions)["Event"] == 3  # not 12
    finally:
        await modern.close()
        await legacy.close()


async def test_sse_stream_that_fell_behind_sends_what_it_holds_at_once(server: str) -> None:
    """A session page whose reader is slow: the deliveries that waited are sent as fewer
    messages, with every event once, in order."""
    native = f"behind-{uuid.uuid4().hex[:8]}"
    port = int(server.rsplit(":", 1)[1])
    sid = str(session_id("claude-code", native))
    reader, writer = await asyncio.open_connection(sock=_tiny_socket(port))
    writer.write(f"GET /live/sessions/{sid} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
    events = _big_events(native, 30)
    async with Key() as auth, httpx.AsyncClient(base_url=server, timeout=60) as client:
        for e in events:  # one delivery each, while the reader reads nothing
            await ingest(client, [e], auth)
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # now read
    body, text = b"", ""
    try:
        while len(re.findall(r"\d{4} x{10}", text)) < len(events):
            chunk = await asyncio.wait_for(reader.read(1 << 20), 30)
            assert chunk, "stream ended early"
            body += chunk
            text = dechunk(body).decode(errors="replace")
    finally:
        writer.close()
    messages = [m for m in text.split("\r\n\r\n") if "event: event" in m]
    seen = [int(n) for m in messages for n in re.findall(r"(\d{4}) x{10}", m)]
    assert seen == list(range(len(events)))  # every event once, in order
    assert len(messages) < len(events)  # those that waited went out together


async def test_live_delivery_goes_on_while_a_request_stays_in_flight(server: str) -> None:
    """Live delivery yields to requests in flight, but is never starved by them: with a request
    held open for the whole test, every subscriber still gets every event, in order."""
    native = f"busy-{uuid.uuid4().hex[:8]}"
    sid = str(session_id("claude-code", native))
    port = int(server.rsplit(":", 1)[1])
    bus = running_bus()
    # a request whose body never finishes: in flight until we close it
    _, held = await asyncio.open_connection("127.0.0.1", port)
    held.write(b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Content-Length: 100000\r\n\r\n{\"query\": ")
    await held.drain()
    await wait_for(lambda: bus.pacer.requests >= 1, "the held request")
    ws_url = server.replace("http://", "ws://") + "/graphql"
    sockets = []
    try:
        before = bus.subscriber_count
        for _ in range(10):
            ws = await websockets.connect(ws_url, subprotocols=["graphql-transport-ws"])
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            for sub_id in ("all", "prompts"):
                kinds = ["user_prompt"] if sub_id == "prompts" else None
                await ws.send(json.dumps({"id": sub_id, "type": "subscribe", "payload": {
                    "query": "subscription($f: EventFilterInput) { eventAdded(filter: $f) { seq } }",
                    "variables": {"f": {"session": sid, "kinds": kinds}}}}))
            sockets.append(ws)
        await wait_for(lambda: bus.subscriber_count - before == 20, "the subscriptions")
        start = datetime.now(UTC) - timedelta(minutes=10)
        events = [event(native, i, "user_prompt" if i % 3 == 0 else "assistant_message",
                        ts=start + timedelta(seconds=i), content=f"e{i}") for i in range(300)]
        async with Key() as auth, httpx.AsyncClient(base_url=server, timeout=60) as client:
            for i in range(0, len(events), 50):
                await ingest(client, events[i:i + 50], auth)
        assert bus.pacer.requests >= 1  # still held
        for ws in sockets:
            got: dict[str, list] = {"all": [], "prompts": []}
            while len(got["all"]) < len(events) or len(got["prompts"]) < len(events) // 3:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
                assert msg["type"] == "next", msg
                got[msg["id"]].append(msg["payload"]["data"]["eventAdded"]["seq"])
            assert got == {"all": list(range(len(events))), "prompts": list(range(0, len(events), 3))}
    finally:
        for ws in sockets:
            await ws.close()
        held.close()
