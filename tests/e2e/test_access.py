"""No web page can reach the server (issue 11, part 4), against real servers over real HTTP,
SSE and WebSocket:

* DNS rebinding: a page whose name was rebound to 127.0.0.1 makes its browser send
  ``Host: attacker.example`` — refused (421) on HTTP, SSE and WebSocket; allowed names pass;
  ``DEVLOG_ALLOWED_HOSTS`` adds names. Beyond loopback any name is accepted unless
  ``DEVLOG_ALLOWED_HOSTS`` is set (both modes tested).
* Cross-site state-changing requests (Origin / Sec-Fetch-Site) are refused; same-origin ones and
  clients without those headers (the collector) pass.
* Beyond loopback without a key nothing but ``health`` answers: every root field (generated
  from the schema), introspection, ``databaseVersion``, every route.
* Revoking a key closes the WebSocket subscriptions and SSE streams opened with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
import websockets
from graphql import is_composite_type, is_non_null_type
from graphql.type import get_named_type

from app.services import keys
from tests.app.test_live import next_payload, subscribe
from tests.e2e.test_serve import _wait_ready
from tests.factories import INGEST, MACHINE, event
from tests.helpers import devlog_cmd, free_port, subprocess_env

ATTACKER = "attacker.example"


# ------------------------------------------------------------------ servers and clients

def _spawn(database_url: str, host: str, port: int, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        devlog_cmd("serve", "--host", host, "--port", str(port)),
        env=subprocess_env(DEVLOG_DATABASE_URL=database_url, DEVLOG_LOG_LEVEL="warning", **env),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@contextlib.asynccontextmanager
async def serving(database_url: str, host: str, **env: str) -> AsyncIterator[str]:
    """`devlog serve --host HOST` in a subprocess; yields its URL on 127.0.0.1."""
    port = free_port()
    proc = _spawn(database_url, host, port, **env)
    try:
        await asyncio.to_thread(_wait_ready, proc, f"http://127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.asynccontextmanager
async def a_key(label: str) -> AsyncIterator[tuple[str, str]]:
    """A fresh API key (name, secret), revoked afterwards so other tests see no extra key."""
    record, secret = await keys.create(f"{label}-{uuid.uuid4().hex[:8]}")
    try:
        yield record.name, secret
    finally:
        await keys.revoke(record.name)


def _port(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


async def ws_connect(base: str, host: str | None = None, headers: dict | None = None):
    """A WebSocket handshake to ``base`` (127.0.0.1) that names ``host`` in its Host header
    (the URL's host is what the client sends; the socket goes to 127.0.0.1 anyway)."""
    port = _port(base)
    sock = socket.create_connection(("127.0.0.1", port))
    return await websockets.connect(f"ws://{host or '127.0.0.1'}:{port}/graphql", sock=sock,
                                    subprotocols=["graphql-transport-ws"],
                                    additional_headers=headers, open_timeout=10)


async def ws_init(ws, params: dict | None = None) -> None:
    await ws.send(json.dumps({"type": "connection_init", "payload": params or {}}))
    assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"


async def handshake_status(base: str, host: str | None = None, headers: dict | None = None) -> int:
    try:
        ws = await ws_connect(base, host, headers)
    except websockets.InvalidStatus as exc:
        return exc.response.status_code
    await ws.close()
    return 101


def now_event(native: str, n: int, kind: str = "user_prompt") -> dict:
    return event(native, n, kind, ts=datetime.now(UTC), content=f"prompt {n}")


def batch(native: str, n: int) -> dict:
    return {"query": INGEST, "variables": {"batch": {"events": [now_event(native, n)],
                                                     "machines": [MACHINE]}}}


# ------------------------------------------------------------------ DNS rebinding, loopback

async def test_a_rebound_name_is_refused_on_loopback(server: str) -> None:
    rebound = {"Host": f"{ATTACKER}:{_port(server)}"}
    async with httpx.AsyncClient(base_url=server, timeout=30) as c:
        for method, path, kwargs in [
            ("GET", "/", {}), ("GET", "/sessions", {}), ("GET", "/usage.csv", {}),
            ("GET", "/graphql?query=%7Bprojects%7Bid%7D%7D", {}),
            ("POST", "/graphql", {"json": {"query": "{ projects { id } }"}}),
            ("POST", "/graphql", {"json": batch(f"rebind-{uuid.uuid4()}", 1)}),
            ("GET", "/healthz", {}), ("GET", "/no-such-page", {}),  # before routing
        ]:
            r = await c.request(method, path, headers=rebound, **kwargs)
            assert r.status_code == 421, (method, path, r.status_code)
            assert ATTACKER in r.text and "DEVLOG_ALLOWED_HOSTS" in r.text
            assert r.headers["content-type"].startswith("text/plain")
        # the live stream (SSE) too
        async with c.stream("GET", "/live/overview", headers=rebound) as sse:
            assert sse.status_code == 421
        # the names the server answers to by default
        for name in ("127.0.0.1", "localhost", "[::1]", "LOCALHOST"):
            r = await c.get("/", headers={"Host": f"{name}:{_port(server)}"})
            assert r.status_code == 200, name
    # and the WebSocket handshake
    assert await handshake_status(server, ATTACKER) == 421
    assert await handshake_status(server, "localhost") == 101
    ws = await ws_connect(server, "localhost")
    try:
        await ws_init(ws)
        await subscribe(ws, "h", "subscription { health(everySeconds: 1) { database } }")
        msg = await next_payload(ws)
        assert msg["type"] == "next" and msg["payload"]["data"]["health"]["database"] == "ok"
    finally:
        await ws.close()


async def test_allowed_hosts_adds_names(database_url: str) -> None:
    async with serving(database_url, "127.0.0.1",
                       DEVLOG_ALLOWED_HOSTS="devlog.test, *.corp.example") as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as c:
            for name, status in [("devlog.test", 200), ("ci.corp.example", 200), ("localhost", 200),
                                 (ATTACKER, 421), ("corp.example", 421), ("devlog.test.evil", 421)]:
                r = await c.get("/", headers={"Host": f"{name}:{_port(base)}"})
                assert r.status_code == status, name
        assert await handshake_status(base, "devlog.test") == 101
        assert await handshake_status(base, ATTACKER) == 421


# ------------------------------------------------------------------ cross-site requests

async def test_cross_site_state_changes_are_refused(server: str) -> None:
    same = f"http://127.0.0.1:{_port(server)}"
    async with a_key("csrf") as (_name, secret), \
            httpx.AsyncClient(base_url=server, timeout=30,
                              headers={"Authorization": f"Bearer {secret}"}) as c:
        native = f"xsite-{uuid.uuid4()}"
        for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                        {"Origin": "http://127.0.0.1:1"}, {"Sec-Fetch-Site": "same-site"},
                        {"Origin": "null"}):
            r = await c.post("/graphql", json=batch(native, 1), headers=headers)
            assert r.status_code == 403 and "another site" in r.text, headers
        r = await c.post("/login", data={"key": secret}, headers={"Origin": "http://evil.example"})
        assert r.status_code == 403
        r = await c.post("/logout", headers={"Sec-Fetch-Site": "cross-site"})
        assert r.status_code == 403
        # same origin passes, and so does a client that sends neither header (the collector)
        r = await c.post("/graphql", json=batch(native, 1),
                         headers={"Origin": same, "Sec-Fetch-Site": "same-origin"})
        assert r.json()["data"]["ingestEvents"]["accepted"] == 1
        r = await c.post("/graphql", json=batch(native, 2), headers={"Origin": same})
        assert r.json()["data"]["ingestEvents"]["accepted"] == 1
        r = await c.post("/graphql", json=batch(native, 3))
        assert r.json()["data"]["ingestEvents"]["accepted"] == 1
        # reads and navigation from a link on another site still work
        r = await c.get("/", headers={"Sec-Fetch-Site": "cross-site"})
        assert r.status_code == 200
    # a page on another site cannot open a WebSocket (cross-site WebSocket hijacking)
    assert await handshake_status(server, headers={"Origin": "http://evil.example"}) == 403
    assert await handshake_status(server, headers={"Origin": same}) == 101


# ------------------------------------------------------------------ beyond loopback

def _probe(operation: str, name: str, field) -> str:  # noqa: ANN001 - a graphql-core field
    """The smallest valid operation selecting one root field: required arguments come from
    variables (left unset: coercion happens after the access check)."""
    required = [(arg, a) for arg, a in field.args.items() if is_non_null_type(a.type)]
    defs = ", ".join(f"$v{i}: {a.type}" for i, (_n, a) in enumerate(required))
    args = ", ".join(f"{n}: $v{i}" for i, (n, _a) in enumerate(required))
    selection = " { __typename }" if is_composite_type(get_named_type(field.type)) else ""
    return (f"{operation}{f'({defs})' if defs else ''} "
            f"{{ {name}{f'({args})' if args else ''}{selection} }}")


def _probes() -> list[tuple[str, str, str]]:
    from app.gql.schema import schema

    gs = schema._schema
    return [(op, name, _probe(op, name, f))
            for op, root in (("query", gs.query_type), ("mutation", gs.mutation_type),
                             ("subscription", gs.subscription_type))
            for name, f in root.fields.items()]


def _route_paths() -> list[tuple[str, str]]:
    """Every route of the app: (template, a concrete path)."""
    from app.asgi import create_app
    from app.settings import load_settings

    out = []
    for route in create_app(load_settings()).routes:
        path = route.path_format.replace("{file_path}", "css/app.css")
        for param in ("{session_id}", "{project_id}"):
            path = path.replace(param, str(uuid.uuid4()))
        out.append((route.path_format, path))
    return out


async def test_beyond_loopback_nothing_but_health_answers_without_a_key(database_url: str) -> None:
    async with serving(database_url, "0.0.0.0") as base, a_key("team") as (_name, secret):
        keyed = {"Authorization": f"Bearer {secret}"}
        async with httpx.AsyncClient(base_url=base, timeout=30) as c:
            probes = _probes()
            assert len(probes) > 15
            for op, name, query in probes:
                if op == "subscription":
                    continue
                body = (await c.post("/graphql", json={"query": query})).json()
                if (op, name) == ("query", "health"):
                    assert body["data"]["health"]["__typename"] == "Health"
                    continue
                assert body["data"] is None and "API key" in body["errors"][0]["message"], query
                # with a key the access check passes (what fails then is the unset variable)
                body = (await c.post("/graphql", json={"query": query}, headers=keyed)).json()
                assert all("API key" not in e["message"] for e in body.get("errors", [])), query
            for query in ("{ __schema { types { name } } }", '{ __type(name: "Session") { name } }',
                          "{ __typename }", "{ health { version } projects { id } }"):
                body = (await c.post("/graphql", json={"query": query})).json()
                assert body["data"] is None and "API key" in body["errors"][0]["message"], query
            # GET queries too
            r = await c.get("/graphql", params={"query": "{ __schema { queryType { name } } }"})
            assert "API key" in r.json()["errors"][0]["message"]
            # health answers, without the version details
            query = "{ health { version database databaseVersion timescale storage } }"
            anon = (await c.post("/graphql", json={"query": query})).json()["data"]["health"]
            assert anon["database"] == "ok" and anon["version"]
            assert anon["databaseVersion"] is None and anon["timescale"] is None
            full = (await c.post("/graphql", json={"query": query}, headers=keyed)).json()
            assert full["data"]["health"]["databaseVersion"]
            # every route: the open ones answer, every other one wants a key
            for template, path in _route_paths():
                r = await c.get(path)
                if template in ("/healthz", "/readyz", "/static/{file_path}", "/login"):
                    assert r.status_code == 200, path
                elif template in ("/favicon.ico",):
                    assert r.status_code == 301
                elif template == "/logout":
                    assert r.status_code == 405  # POST only
                elif template == "/graphql":
                    assert r.status_code in (200, 400)  # GraphiQL's page, or "no query"
                else:
                    assert r.status_code in (303, 401), path
                    async with c.stream("GET", path, headers=keyed) as r_keyed:  # SSE: endless
                        assert r_keyed.status_code not in (303, 401), path
        # subscriptions, over a real WebSocket
        ws = await ws_connect(base)
        try:
            await ws_init(ws)
            for i, (op, name, query) in enumerate(p for p in probes if p[0] == "subscription"):
                await subscribe(ws, str(i), query)
                msg = await next_payload(ws)
                errors = msg["payload"] if msg["type"] == "error" else msg["payload"]["errors"]
                assert msg["type"] == "error" or msg["payload"]["data"] is None, msg
                assert "API key" in errors[0]["message"], name
                if msg["type"] == "next":  # an error result, then the end of the stream
                    assert (await next_payload(ws)) == {"id": str(i), "type": "complete"}
        finally:
            await ws.close()
        # any host name reaches a server beyond loopback (keys guard it)
        async with httpx.AsyncClient(base_url=base, timeout=30) as c:
            r = await c.get("/", headers={"Host": "devlog.team.internal:3200"})
            assert r.status_code == 303 and r.headers["location"].startswith("/login")
            r = await c.get("/", headers={"Host": "devlog.team.internal:3200", **keyed})
            assert r.status_code == 200


async def test_beyond_loopback_with_allowed_hosts_only_those_names(database_url: str) -> None:
    async with serving(database_url, "0.0.0.0",
                       DEVLOG_ALLOWED_HOSTS="devlog.team.internal") as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as c:
            for name, status in [("devlog.team.internal", 200), ("127.0.0.1", 200),
                                 (ATTACKER, 421), ("10.0.0.5", 421)]:
                r = await c.get("/healthz", headers={"Host": f"{name}:{_port(base)}"})
                assert r.status_code == status, name
        assert await handshake_status(base, ATTACKER) == 421


# ------------------------------------------------------------------ revocation

async def _sse_lines(stream: httpx.Response, into: list[str]) -> None:
    async for line in stream.aiter_lines():
        into.append(line)


async def _wait_for(predicate, timeout: float = 20.0) -> None:  # noqa: ANN001
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.1)
    await asyncio.wait_for(poll(), timeout)


async def test_revoking_a_key_closes_its_live_streams(database_url: str) -> None:
    async with serving(database_url, "0.0.0.0") as base, a_key("kept") as (_kept, kept):
        revoked_record, doomed = await keys.create(f"doomed-{uuid.uuid4().hex[:8]}")
        native = f"revoke-{uuid.uuid4()}"
        query = 'subscription { eventAdded(filter: {kinds: ["user_prompt"]}) { content } }'
        ws_doomed = await ws_connect(base)  # the key in connection_init
        ws_kept = await ws_connect(base, headers={"Authorization": f"Bearer {kept}"})
        async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(30, read=None)) as c:
            try:
                await ws_init(ws_doomed, {"Authorization": f"Bearer {doomed}"})
                await ws_init(ws_kept)
                await subscribe(ws_doomed, "1", query)
                await subscribe(ws_kept, "1", query)
                lines: list[str] = []
                async with c.stream("GET", "/live/overview",
                                    headers={"Authorization": f"Bearer {doomed}"}) as sse:
                    assert sse.status_code == 200
                    reader = asyncio.create_task(_sse_lines(sse, lines))
                    await asyncio.sleep(1.0)  # the subscriptions register
                    ok = await c.post("/graphql", json=batch(native, 1),
                                      headers={"Authorization": f"Bearer {kept}"})
                    assert ok.json()["data"]["ingestEvents"]["accepted"] == 1
                    for ws in (ws_doomed, ws_kept):  # both streams are live
                        msg = await next_payload(ws)
                        assert msg["payload"]["data"]["eventAdded"]["content"] == "prompt 1"
                    await _wait_for(lambda: "event: event" in lines)

                    await keys.revoke(revoked_record.name)

                    # the SSE stream ends, the WebSocket is closed with 4403
                    await asyncio.wait_for(reader, 20)
                    with pytest.raises(websockets.ConnectionClosed) as closed:
                        await next_payload(ws_doomed, timeout=20)
                    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
                    assert "revoked" in closed.value.rcvd.reason
                # the other key's stream goes on
                ok = await c.post("/graphql", json=batch(native, 2),
                                  headers={"Authorization": f"Bearer {kept}"})
                assert ok.json()["data"]["ingestEvents"]["accepted"] == 1
                msg = await next_payload(ws_kept)
                assert msg["payload"]["data"]["eventAdded"]["content"] == "prompt 2"
                # and the revoked key opens nothing new
                r = await c.get("/live/overview", headers={"Authorization": f"Bearer {doomed}"})
                assert r.status_code == 401
            finally:
                await ws_doomed.close()
                await ws_kept.close()
