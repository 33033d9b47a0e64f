"""One bad event never blocks the others: a batch the server fails as a whole is bisected, the
event(s) it fails on alone become dead letters, the rest is delivered.

Two real servers: ``PickyServer``, a small aiohttp server of this test's own that fails (as a
GraphQL error or an HTTP 500) every batch holding an event marked ``POISON`` — so the tests do not
depend on which inputs today's devlog server fails on — and the real devlog server (``server``
fixture) with inputs it has failed on as a whole batch (a NUL in a tool name, a 1,100-character
workspace, a payload nested 1,000 deep): whether it stores them or not, every valid neighbour
must arrive and nothing may stay blocked in the outbox.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import msgspec
import pytest
from aiohttp import web

from collector import version
from collector.config import CollectorSettings
from collector.machine import this_machine
from collector.outbox import FileRow, Outbox
from collector.sender import Sender
from collector.wire import Event
from tests.helpers import devlog_cmd, subprocess_env

POISON = "POISON"
SERVER_MESSAGE = 'invalid byte sequence for encoding "UTF8": 0x00'


class PickyServer:
    """A real HTTP server answering ``ingestEvents`` like devlog does, but failing any batch
    that holds a poisoned event (``fail``: "graphql" or "http500"), or every batch
    (``fail_all``), or saying it is unavailable (``unavailable``). It keeps what it took."""

    def __init__(self) -> None:
        self.stored: dict[str, int] = {}  # event id → times received in a committed batch
        self.requests: list[int] = []  # events per ingest request, in order
        self.version = "1.0"
        self.fail = "graphql"
        self.fail_all = False
        self.unavailable: str | None = None  # "graphql" or "http503"
        self.unavailable_after: int | None = None  # requests answered before it goes away
        self.poisoned = True
        self.reject: set[str] = set()  # ids refused by index, with a reason
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> PickyServer:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/graphql", self._graphql)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/graphql"
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def _graphql(self, request: web.Request) -> web.Response:
        doc = json.loads(await request.read())  # aiohttp has undone the gzip
        if "health" in doc["query"]:
            return web.json_response({"data": {"health": {"version": self.version}}})
        events = doc["variables"]["batch"]["events"]
        self.requests.append(len(events))
        if self.unavailable_after is not None and len(self.requests) > self.unavailable_after:
            self.unavailable = "http503"
        if self.unavailable == "http503":
            return web.Response(status=503, text="Service Unavailable")
        if self.unavailable:
            return web.json_response({"data": None, "errors": [{"message": (
                "database unavailable, nothing was stored (connection refused); retry")}]})
        bad = self.fail_all or (self.poisoned and any(e.get("toolName") == POISON for e in events))
        if bad and self.fail == "http500":
            return web.json_response({"status_code": 500, "detail": "Internal Server Error"},
                                     status=500)
        if bad:
            return web.json_response({"data": None, "errors": [
                {"message": SERVER_MESSAGE, "path": ["ingestEvents"]}]})
        rejected, accepted, duplicates = [], 0, 0
        for index, event in enumerate(events):
            if event["id"] in self.reject:
                rejected.append({"index": index, "id": event["id"], "reason": "too big"})
                continue
            duplicates += event["id"] in self.stored
            accepted += event["id"] not in self.stored
            self.stored[event["id"]] = self.stored.get(event["id"], 0) + 1
        return web.json_response({"data": {"ingestEvents": {
            "accepted": accepted, "duplicates": duplicates, "rejected": rejected}}})


@pytest.fixture
async def picky():
    srv = await PickyServer().start()
    yield srv
    await srv.stop()


def event(n: int, *, tool: str = "Bash", session: str = "s1", **fields) -> Event:
    return Event(id=uuid.uuid5(uuid.NAMESPACE_URL, f"devlog-test/{session}/{n}"), kind="tool_call",
                 ts=datetime(2026, 3, 1, 12, 0, n % 60, tzinfo=UTC), agent="claude-code",
                 session=session, machine=this_machine().key, seq=n, tool_name=tool, **fields)


def fill(path: Path, events: list[Event], raw: dict[int, bytes] | None = None) -> list[str]:
    """Store events in the outbox as the reader does (``raw``: a body to store instead, by
    position); returns their ids in order."""
    outbox = Outbox(path)
    rows = [(e.id.bytes, e.agent, (raw or {}).get(i) or msgspec.json.encode(e))
            for i, e in enumerate(events)]
    outbox.commit(FileRow(path=f"log-{uuid.uuid4()}", agent="claude-code"), rows)
    outbox.close()
    return [str(e.id) for e in events]


def settings_for(url: str, tmp_path: Path, **extra) -> CollectorSettings:
    return CollectorSettings(server_url=url, state_dir=str(tmp_path), concurrency=1, **extra)


async def drain(settings: CollectorSettings, path: Path, attempts: int = 3) -> tuple[bool, Sender]:
    async with Sender(settings, path, this_machine()) as sender:
        done = await sender.drain(attempts=attempts)
    return done, sender


def dead_rows(path: Path) -> list[dict]:
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM dead_letter ORDER BY first_at, id")]


def pending(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT count(*) FROM outbox").fetchone()[0]


@pytest.mark.parametrize("fail", ["graphql", "http500"])
async def test_the_events_a_batch_fails_on_are_isolated_and_the_rest_delivered(
        picky: PickyServer, tmp_path: Path, fail: str) -> None:
    picky.fail = fail
    path = tmp_path / "buffer.sqlite3"
    events = [event(n, tool=POISON if n in (7, 31) else "Bash") for n in range(40)]
    ids = fill(path, events)
    done, sender = await drain(settings_for(picky.url, tmp_path, batch_size=40), path)
    assert done  # not "N events wait in the buffer"
    good = {i for n, i in enumerate(ids) if n not in (7, 31)}
    assert set(picky.stored) == good  # every neighbour delivered
    assert pending(path) == 0
    dead = dead_rows(path)
    assert [str(uuid.UUID(bytes=d["id"])) for d in dead] == [ids[7], ids[31]]
    for d in dead:
        assert d["kind"] == "failed" and d["attempts"] == 1 and d["due"] == 0
        assert d["reason"] == (SERVER_MESSAGE if fail == "graphql" else "HTTP 500")
        assert d["first_at"] == d["last_at"] > 0
        assert d["collector_version"] == version() and d["server_version"] == "1.0"
        assert json.loads(d["body"])["toolName"] == POISON  # kept as it would be sent
    assert sender.totals.dead == 2
    # bisection, not one request per event: each halving costs two requests
    assert len(picky.requests) < 40
    before = len(picky.requests)
    done, _ = await drain(settings_for(picky.url, tmp_path), path)
    assert done and len(picky.requests) == before  # a dead letter is not retried by itself


async def test_a_lone_bad_event_is_dead_lettered_only_when_the_canary_passes(
        picky: PickyServer, tmp_path: Path) -> None:
    """Live, a bad event often travels alone. The server took other events before: one of them
    (the canary) goes through right after the bad one fails, so the fault is the event's."""
    path = tmp_path / "buffer.sqlite3"
    fill(path, [event(n) for n in range(3)])
    assert (await drain(settings_for(picky.url, tmp_path), path))[0]
    (bad,) = fill(path, [event(99, tool=POISON)])
    done, _ = await drain(settings_for(picky.url, tmp_path), path)
    assert done and pending(path) == 0
    assert [str(uuid.UUID(bytes=d["id"])) for d in dead_rows(path)] == [bad]
    assert max(picky.stored.values()) >= 2  # the canary: sent again, a duplicate


@pytest.mark.parametrize("unavailable", ["graphql", "http503"])
async def test_a_server_that_is_unavailable_is_retried_not_bisected(
        picky: PickyServer, tmp_path: Path, unavailable: str) -> None:
    picky.unavailable = unavailable
    path = tmp_path / "buffer.sqlite3"
    fill(path, [event(n) for n in range(10)])
    done, sender = await drain(settings_for(picky.url, tmp_path), path, attempts=2)
    assert not done
    assert picky.requests == [10, 10]  # the whole batch, twice: not split
    assert pending(path) == 10 and dead_rows(path) == []
    assert "unavailable" in (sender.last_error or "") or "503" in (sender.last_error or "")


async def test_a_server_that_fails_every_event_keeps_them_all_in_the_buffer(
        picky: PickyServer, tmp_path: Path) -> None:
    """A server fault (disk full, a broken upgrade) fails everything, even an event it took
    before: nothing becomes a dead letter, everything waits, the error is shown."""
    path = tmp_path / "buffer.sqlite3"
    fill(path, [event(n) for n in range(3)])
    assert (await drain(settings_for(picky.url, tmp_path), path))[0]
    picky.fail_all = True
    fill(path, [event(n) for n in range(10, 30)])
    done, sender = await drain(settings_for(picky.url, tmp_path), path, attempts=2)
    assert not done
    assert pending(path) == 20 and dead_rows(path) == []
    assert "fails an event it took before" in (sender.last_error or "")
    with sqlite3.connect(path) as db:
        meta = dict(db.execute("SELECT key, value FROM meta"))
    assert SERVER_MESSAGE in meta["last_error"]  # what `devlog collect status` shows
    picky.fail_all = False
    assert (await drain(settings_for(picky.url, tmp_path), path))[0]
    assert pending(path) == 0 and len(picky.stored) == 23


async def test_an_outage_in_the_middle_of_a_bisection_makes_no_dead_letter(
        picky: PickyServer, tmp_path: Path) -> None:
    path = tmp_path / "buffer.sqlite3"
    fill(path, [event(n) for n in range(3)])
    assert (await drain(settings_for(picky.url, tmp_path), path))[0]  # a canary
    ids = fill(path, [event(n, tool=POISON if n == 15 else "Bash") for n in range(10, 26)])
    picky.unavailable_after = len(picky.requests) + 3  # the batch, the canary, one half
    done, sender = await drain(settings_for(picky.url, tmp_path), path, attempts=1)
    assert not done and "503" in (sender.last_error or "")
    assert dead_rows(path) == []
    assert pending(path) + len(set(ids) & set(picky.stored)) == 16  # each event: sent or waiting
    picky.unavailable = picky.unavailable_after = None
    assert (await drain(settings_for(picky.url, tmp_path), path))[0]
    assert [str(uuid.UUID(bytes=d["id"])) for d in dead_rows(path)] == [ids[5]]


async def test_events_the_server_rejects_are_kept_as_dead_letters(
        picky: PickyServer, tmp_path: Path) -> None:
    path = tmp_path / "buffer.sqlite3"
    ids = fill(path, [event(n) for n in range(5)])
    picky.reject = {ids[2]}
    done, sender = await drain(settings_for(picky.url, tmp_path), path)
    assert done and pending(path) == 0
    (dead,) = dead_rows(path)
    assert str(uuid.UUID(bytes=dead["id"])) == ids[2]
    assert (dead["kind"], dead["reason"], dead["attempts"]) == ("rejected", "too big", 1)
    assert sender.totals.rejected == 1 and set(picky.stored) == set(ids) - {ids[2]}


@pytest.mark.parametrize("upgraded", ["server", "collector"])
async def test_dead_letters_are_sent_again_after_an_upgrade(
        picky: PickyServer, tmp_path: Path, upgraded: str) -> None:
    path = tmp_path / "buffer.sqlite3"
    ids = fill(path, [event(n, tool=POISON if n == 1 else "Bash") for n in range(4)])
    assert (await drain(settings_for(picky.url, tmp_path), path))[0]
    assert len(dead_rows(path)) == 1
    picky.poisoned = False  # the fix, not yet deployed as a new version
    assert (await drain(settings_for(picky.url, tmp_path), path))[0]
    assert len(dead_rows(path)) == 1 and ids[1] not in picky.stored  # same versions: not resent
    if upgraded == "server":
        picky.version = "1.1"
    else:  # the row was last tried by an older collector
        with sqlite3.connect(path) as db:
            db.execute("UPDATE dead_letter SET collector_version = '0.0.1'")
    assert (await drain(settings_for(picky.url, tmp_path), path))[0]
    assert dead_rows(path) == [] and ids[1] in picky.stored


async def test_a_dead_letter_failing_again_counts_one_more_attempt(
        picky: PickyServer, tmp_path: Path) -> None:
    path = tmp_path / "buffer.sqlite3"
    fill(path, [event(n, tool=POISON if n == 2 else "Bash") for n in range(3)])
    assert (await drain(settings_for(picky.url, tmp_path), path))[0]
    (first,) = dead_rows(path)
    assert first["attempts"] == 1
    picky.version = "2.0"  # upgraded, still failing on it
    assert (await drain(settings_for(picky.url, tmp_path), path))[0]
    (again,) = dead_rows(path)
    assert again["attempts"] == 2 and again["due"] == 0 and again["server_version"] == "2.0"
    assert again["first_at"] == first["first_at"] < again["last_at"]


async def test_what_a_server_failing_everything_on_a_first_run_kept_is_sent_once_it_works(
        picky: PickyServer, tmp_path: Path) -> None:
    """On a first run there is no canary: a server that fails every event looks like a batch
    of bad events. What it made dead letters is sent again once the server takes an event."""
    path = tmp_path / "buffer.sqlite3"
    picky.fail_all = True
    first = fill(path, [event(n) for n in range(4)])
    assert (await drain(settings_for(picky.url, tmp_path), path))[0]
    assert {d["confirmed"] for d in dead_rows(path)} == {0} and len(dead_rows(path)) == 4
    picky.fail_all = False  # fixed, same version; the agents go on writing
    later = fill(path, [event(n, session="s2") for n in range(2)])
    assert (await drain(settings_for(picky.url, tmp_path), path))[0]
    assert dead_rows(path) == [] and set(picky.stored) == set(first) | set(later)


async def test_a_bad_first_event_is_confirmed_once_the_server_took_another(
        picky: PickyServer, tmp_path: Path) -> None:
    path = tmp_path / "buffer.sqlite3"
    ids = fill(path, [event(n, tool=POISON if n == 0 else "Bash") for n in range(4)])
    assert (await drain(settings_for(picky.url, tmp_path), path))[0]
    (dead,) = dead_rows(path)
    assert str(uuid.UUID(bytes=dead["id"])) == ids[0]
    # kept before the server had taken anything, sent again once it had: confirmed bad
    assert (dead["attempts"], dead["confirmed"], dead["due"]) == (2, 1, 0)
    assert set(picky.stored) == set(ids[1:])


def test_an_older_buffer_keeps_its_rejected_events_as_dead_letters(tmp_path: Path) -> None:
    path = tmp_path / "buffer.sqlite3"
    with sqlite3.connect(path) as db:  # the table as earlier collectors made it
        db.execute("CREATE TABLE rejected (id BLOB PRIMARY KEY, agent TEXT NOT NULL, reason TEXT "
                   "NOT NULL, body BLOB NOT NULL, at REAL NOT NULL)")
        db.execute("INSERT INTO rejected VALUES (?, 'codex', 'too large', x'7b7d', 1700000000.0)",
                   (uuid.UUID(int=5).bytes,))
    outbox = Outbox(path)
    (dead,) = outbox.dead.latest()
    assert (dead.id, dead.agent, dead.kind, dead.reason) == (uuid.UUID(int=5), "codex", "rejected",
                                                             "too large")
    assert dead.first_at == 1700000000.0 and dead.collector_version == ""  # retried once
    outbox.close()
    Outbox(path).close()  # opened again: nothing to take over
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT name FROM sqlite_master WHERE name = 'rejected'").fetchone() is None


async def _cli(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    env = subprocess_env(DEVLOG_COLLECTOR_STATE_DIR=str(tmp_path), DEVLOG_COLLECTOR_SERVER_URL=url)
    return await asyncio.to_thread(subprocess.run, devlog_cmd("collect", *args), env=env,
                                   capture_output=True, text=True, timeout=120)


async def test_dead_letter_commands(picky: PickyServer, tmp_path: Path) -> None:
    path = tmp_path / "buffer.sqlite3"
    ids = fill(path, [event(n, tool=POISON if n in (1, 3) else "Bash") for n in range(4)])
    assert (await drain(settings_for(picky.url, tmp_path), path))[0]

    status = await _cli(tmp_path, picky.url, "status")
    assert "dead letters: 2 event(s) the server failed on alone" in status.stdout, status.stdout
    assert SERVER_MESSAGE in status.stdout

    listed = await _cli(tmp_path, picky.url, "dead-letters", "list")
    assert listed.returncode == 0 and ids[1] in listed.stdout and ids[3] in listed.stdout
    assert "2 dead letter(s): 2 failed" in listed.stdout

    shown = await _cli(tmp_path, picky.url, "dead-letters", "show", ids[1][:13])
    assert shown.returncode == 0, shown.stderr
    assert SERVER_MESSAGE in shown.stdout and f'"toolName": "{POISON}"' in shown.stdout
    unknown = await _cli(tmp_path, picky.url, "dead-letters", "show", "ffffffff")
    assert unknown.returncode == 2 and "no single dead letter matches ffffffff" in unknown.stderr

    again = await _cli(tmp_path, picky.url, "dead-letters", "retry", ids[1])  # still failing
    assert again.returncode == 0 and "0 delivered" in again.stdout, again.stdout + again.stderr
    assert {str(uuid.UUID(bytes=d["id"])): d["attempts"] for d in dead_rows(path)} == {
        ids[1]: 2, ids[3]: 1}

    picky.poisoned = False
    fixed = await _cli(tmp_path, picky.url, "dead-letters", "retry", ids[1])
    assert "1 delivered" in fixed.stdout and ids[1] in picky.stored
    assert [str(uuid.UUID(bytes=d["id"])) for d in dead_rows(path)] == [ids[3]]

    refused = await _cli(tmp_path, picky.url, "dead-letters", "drop")
    assert refused.returncode == 2 and "--all" in refused.stderr
    dropped = await _cli(tmp_path, picky.url, "dead-letters", "drop", "--all")
    assert dropped.returncode == 0 and "removed 1 dead letter(s)" in dropped.stdout
    assert dead_rows(path) == [] and ids[3] not in picky.stored
    empty = await _cli(tmp_path, picky.url, "dead-letters", "list")
    assert "no dead letters" in empty.stdout


async def test_retry_later_marks_them_for_the_running_collector(
        picky: PickyServer, tmp_path: Path) -> None:
    path = tmp_path / "buffer.sqlite3"
    ids = fill(path, [event(n, tool=POISON if n == 1 else "Bash") for n in range(3)])
    assert (await drain(settings_for(picky.url, tmp_path), path))[0]
    picky.poisoned = False
    marked = await _cli(tmp_path, picky.url, "dead-letters", "retry", "--later", "--kind", "failed")
    assert "1 dead letter(s) marked" in marked.stdout and ids[1] not in picky.stored
    assert (await drain(settings_for(picky.url, tmp_path), path))[0]  # what a collector runs
    assert ids[1] in picky.stored and dead_rows(path) == []


# -- the real devlog server ------------------------------------------------------------------

async def test_inputs_the_real_server_fails_on_cost_no_neighbour(
        server: str, database_url: str, tmp_path: Path) -> None:
    """A NUL in a tool name, a 1,100-character workspace and a payload nested 1,000 deep have
    each failed the devlog server's ingest for the whole batch (a GraphQL error; an HTTP 500).
    Mixed with valid events in one batch: every valid event is stored, the outbox empties, and
    each bad one is either stored (the server learnt to take it) or kept as a dead letter with
    the server's reason — never blocking the rest."""
    path = tmp_path / "buffer.sqlite3"
    events = [event(n, session="real-1") for n in range(30)]
    bad = {5: event(5, session="real-1", tool="Ba\u0000sh"),
           17: event(17, session="real-2", workspace="/" + "w" * 1099),
           23: event(23, session="real-1")}
    for n, e in bad.items():
        events[n] = e
    deep = msgspec.json.encode(bad[23])[:-1] + b',"payload":' + b"[" * 1000 + b"]" * 1000 + b"}"
    ids = fill(path, events, raw={23: deep})
    done, _sender = await drain(settings_for(f"{server}/graphql", tmp_path, batch_size=30), path)
    assert done and pending(path) == 0
    conn = await asyncpg.connect(database_url)
    try:
        stored = {str(r["id"]) for r in await conn.fetch(
            "SELECT id FROM agent_event WHERE id = any($1::uuid[])", ids)}
    finally:
        await conn.close()
    dead = {str(uuid.UUID(bytes=d["id"])): d for d in dead_rows(path)}
    valid = {ids[n] for n in range(30) if n not in bad}
    assert valid <= stored  # one bad event never costs its neighbours
    assert set(dead) <= {ids[n] for n in bad}
    for n in bad:  # each bad one accounted for: stored, or kept with a reason
        assert (ids[n] in stored) != (ids[n] in dead), n
        if ids[n] in dead:
            assert dead[ids[n]]["reason"]
