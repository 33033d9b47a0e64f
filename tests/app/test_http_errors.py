"""Errors over HTTP: a malformed GraphQL request is a clear GraphQL-style 400, never a 500; an
unhandled exception anywhere is one log line (path, reference, exception) and a 500 that tells
the client nothing internal; GraphQL errors caused by server faults are masked the same way."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import strawberry
import uvicorn
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar, get, websocket
from litestar.connection import WebSocket
from litestar.params import FromPath
from litestar.response import Stream

from app.errors import DatabaseUnavailable
from app.gql.errors import MaskInternalErrors
from app.lifespan import Database
from app.server import bind_socket
from app.settings import load_settings

JSON = "application/json"
HEALTH = '{"query": "{ health { database } }"'


def body(*parts: str) -> bytes:
    return "".join(parts).encode()


@pytest.mark.parametrize("content, content_type, says", [
    (b"null", JSON, "must be a JSON object"),  # a 500 before
    (b'"{ health { database } }"', JSON, "not a string"),
    (b"5", JSON, "not a number"),
    (b"true", JSON, "not a boolean"),
    (b"[]", JSON, "one operation per request"),
    (b"", JSON, "not valid JSON"),
    (b'{"query": ', JSON, "not valid JSON"),
    (b'{"query": "\xff"}', JSON, "not valid JSON"),  # not UTF-8
    (b'{"query": 5}', JSON, "`query` must be a string"),
    (b'{"query": null}', JSON, "no GraphQL query"),
    (b"{}", JSON, "no GraphQL query"),
    (body(HEALTH, ', "variables": []}'), JSON, "`variables` must be an object"),
    (body(HEALTH, ', "variables": "x"}'), JSON, "`variables` must be an object"),
    (body(HEALTH, ', "operationName": 5}'), JSON, "`operationName` must be a string"),
    (body(HEALTH, ', "operationName": ["a"]}'), JSON, "`operationName` must be a string"),
    (body(HEALTH, ', "extensions": 5}'), JSON, "`extensions` must be an object"),
    (body(HEALTH, "}"), "text/plain", "Content-Type: application/json"),
    (body(HEALTH, "}"), None, "Content-Type: application/json"),
    (b"query=%7Bhealth%7Bdatabase%7D%7D", "application/x-www-form-urlencoded", "Content-Type"),
    (b"--x--", "multipart/form-data; boundary=x", "Content-Type"),
    (body(HEALTH, ', "variables": {"a": ', "[" * 5000, "]" * 5000, "}}"), JSON, "nested too deeply"),  # a 500 before
])
async def test_malformed_graphql_requests_are_graphql_400s(client: httpx.AsyncClient, content: bytes,
                                                          content_type: str | None, says: str) -> None:
    headers = {"content-type": content_type} if content_type else {}
    r = await client.post("/graphql", content=content, headers=headers)
    assert r.status_code == 400, (content[:60], r.status_code, r.text[:200])
    assert r.headers["content-type"].startswith(JSON)
    errors = r.json()["errors"]
    assert len(errors) == 1 and says in errors[0]["message"], errors


@pytest.mark.parametrize("params, says", [
    ({"query": "{ health { database } }", "variables": "{not json"}, "`variables` or `extensions`"),
    ({"query": "{ health { database } }", "variables": "[1]"}, "`variables` must be an object"),
    ({"query": "{ health { database } }", "extensions": "5"}, "`extensions` must be an object"),
    ({"variables": "{}"}, "no GraphQL query"),
])
async def test_malformed_graphql_gets_are_graphql_400s(client: httpx.AsyncClient, params: dict,
                                                      says: str) -> None:
    r = await client.get("/graphql", params=params, headers={"accept": JSON})
    assert r.status_code == 400 and says in r.json()["errors"][0]["message"], r.text


@pytest.fixture(scope="module")
async def shared_client(server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server, timeout=30) as c:
        yield c


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)
_queries = st.sampled_from(["{ health { database } }", "query Q { health { database } }",
                            "{ sessions(first: 1) { edges { node { id } } } }", "{", ""]) | st.text(max_size=40)
_requests = st.fixed_dictionaries({}, optional={
    "query": _queries | _json, "variables": _json, "operationName": _json | st.just("Q"),
    "extensions": _json})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=_requests | _json)
async def test_any_json_body_gets_a_graphql_answer_never_a_500(shared_client: httpx.AsyncClient,
                                                                 payload: object) -> None:
    r = await shared_client.post("/graphql", content=json.dumps(payload), headers={"content-type": JSON})
    assert r.status_code in (200, 400), (payload, r.status_code, r.text[:300])
    answer = r.json()
    assert isinstance(answer, dict) and ("data" in answer or answer["errors"]), answer
    for error in answer.get("errors") or []:
        assert "Traceback" not in error["message"] and "site-packages" not in error["message"]


# --- unhandled exceptions: the real app factory, with routes that fail on purpose ------------

SECRET = "the password is hunter2 at /home/dev/.config/devlog/devlog.toml"


@get("/test-fails", sync_to_thread=False)
def fails() -> str:
    raise RuntimeError(SECRET)


@get("/test-fails/{rest:str}", sync_to_thread=False)
def fails_with_path(rest: FromPath[str]) -> str:
    raise RuntimeError(SECRET)


@get("/test-fails-streaming")
async def fails_streaming() -> Stream:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"a,b\n"
        raise RuntimeError(SECRET)

    return Stream(chunks(), media_type="text/csv")


@websocket("/test-fails-ws")
async def fails_ws(socket: WebSocket) -> None:
    await socket.accept()
    raise RuntimeError(SECRET)


@pytest.fixture(scope="module")
async def failing_server(database_url: str) -> AsyncIterator[str]:
    """``create_app()`` as ``devlog serve`` makes it, on a real uvicorn, plus three routes that
    raise. Its lifespan is off: these routes need no database (and the run's pool belongs to
    the main test server)."""
    from app.asgi import create_app

    app: Litestar = create_app(load_settings(database_url=database_url),
                               Database(url=database_url, embedded=False))
    for handler in (fails, fails_with_path, fails_streaming, fails_ws):
        app.register(handler)
    sock = bind_socket("127.0.0.1", 0)
    srv = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_config=None, access_log=False,
                                        log_level="critical"))
    srv.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(srv.serve(sockets=[sock]))
    while not srv.started and not task.done():
        await asyncio.sleep(0.02)
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        srv.should_exit = True
        await task
        sock.close()


def lines_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "devlog.http" and r.levelno >= logging.ERROR]


async def test_an_unhandled_exception_is_one_log_line_and_a_bare_500(
        failing_server: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="devlog.http")
    async with httpx.AsyncClient(base_url=f"http://{failing_server}") as c:
        r = await c.get("/test-fails?x=1")
        page = await c.get("/test-fails", headers={"accept": "text/html"})
    assert r.status_code == 500 and page.status_code == 500
    for response in (r, page):
        assert "hunter2" not in response.text and "/home/dev" not in response.text
        assert "RuntimeError" not in response.text
    ref = re.search(r"reference ([0-9a-f]{8})", r.json()["detail"]).group(1)
    assert re.search(r"<code>[0-9a-f]{8}</code>", page.text)
    lines = lines_of(caplog)
    assert len(lines) == 2 and "\n" not in lines[0]
    assert lines[0] == f"GET /test-fails failed [{ref}]: RuntimeError: {SECRET}"
    traceback = [r for r in caplog.records if r.levelno == logging.DEBUG and ref in r.getMessage()]
    assert traceback and traceback[0].exc_info  # the details, for --log-level debug


async def test_a_request_path_cannot_forge_log_lines(failing_server: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    async with httpx.AsyncClient(base_url=f"http://{failing_server}") as c:
        r = await c.get("/test-fails/x%0a12:00:00 ERROR devlog.http: forged%00")
    assert r.status_code == 500
    lines = lines_of(caplog)
    assert len(lines) == 1 and "\n" not in lines[0] and "\x00" not in lines[0]
    assert lines[0].startswith("GET /test-fails/x\\n12:00:00 ERROR devlog.http: forged\\x00 failed [")


@pytest.mark.parametrize("path", ["/static/%00", "/static/css/a%00.css", "/static/" + "a" * 5000])
async def test_static_paths_that_cannot_name_a_file_are_404s(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path)
    assert r.status_code == 404, (path[:40], r.status_code)


async def test_an_exception_after_a_streamed_response_started_is_logged_and_cuts_the_response(
        failing_server: str, caplog: pytest.LogCaptureFixture) -> None:
    async with httpx.AsyncClient(base_url=f"http://{failing_server}") as c:
        with pytest.raises(httpx.RemoteProtocolError):  # incomplete: not a complete-looking CSV
            async with c.stream("GET", "/test-fails-streaming") as r:
                assert r.status_code == 200
                async for _ in r.aiter_bytes():
                    pass
    lines = lines_of(caplog)
    assert len(lines) == 1 and lines[0].startswith(
        "GET /test-fails-streaming (after the response started) failed [")
    assert lines[0].endswith(f"RuntimeError: {SECRET}")


async def test_a_websocket_exception_is_logged(failing_server: str, caplog: pytest.LogCaptureFixture) -> None:
    async with websockets.connect(f"ws://{failing_server}/test-fails-ws") as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and "hunter2" not in (closed.value.rcvd.reason or "")
    lines = lines_of(caplog)
    assert len(lines) == 1 and lines[0].startswith("WEBSOCKET /test-fails-ws failed [")


# --- GraphQL errors caused by the server are masked ---------------------------------------------

@strawberry.type
class _Query:
    @strawberry.field
    def driver(self) -> int | None:
        raise asyncpg.exceptions.UndefinedTableError('relation "agent_event_x" does not exist')

    @strawberry.field
    def path(self) -> int | None:
        raise IsADirectoryError(21, "Is a directory", "/usr/share/zoneinfo/Europe")

    @strawberry.field
    def bad_argument(self) -> int | None:
        raise ValueError("unknown time zone 'X' (use an IANA name like Europe/Paris)")

    @strawberry.field
    def unavailable(self) -> int | None:
        raise DatabaseUnavailable("database unavailable, nothing was stored (timed out); retry")


@strawberry.type
class _Subscription:
    @strawberry.subscription
    async def ticks(self) -> AsyncIterator[int]:
        yield 1
        raise OSError(5, "Input/output error", "/var/lib/devlog/pg/base/1")


_schema = strawberry.Schema(query=_Query, subscription=_Subscription, extensions=[MaskInternalErrors])


async def test_server_faults_are_masked_in_graphql_errors(caplog: pytest.LogCaptureFixture) -> None:
    result = await _schema.execute("{ driver path badArgument unavailable }")
    messages = {e.path[0]: e.message for e in result.errors}
    assert messages["badArgument"] == "unknown time zone 'X' (use an IANA name like Europe/Paris)"
    assert messages["unavailable"].startswith("database unavailable")
    for field in ("driver", "path"):
        assert re.fullmatch(r"internal server error \(reference [0-9a-f]{8}; the details are in "
                            r"the server's log\)", messages[field]), messages[field]
    lines = lines_of(caplog)
    assert len(lines) == 2
    assert any("GraphQL driver" in line and "UndefinedTableError" in line and "agent_event_x" in line
               for line in lines)
    assert any("GraphQL path" in line and "/usr/share/zoneinfo/Europe" in line for line in lines)


async def test_subscription_frames_are_masked_too() -> None:
    stream = await _schema.subscribe("subscription { ticks }")
    frames = [frame async for frame in stream]
    assert frames[0].data == {"ticks": 1}
    assert "/var/lib" not in frames[-1].errors[0].message
    assert frames[-1].errors[0].message.startswith("internal server error (reference ")


def test_the_served_schema_masks_server_faults() -> None:
    from app.gql.schema import schema

    assert MaskInternalErrors in schema.extensions
