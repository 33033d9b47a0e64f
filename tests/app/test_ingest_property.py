"""Property: a batch mixing valid events with arbitrary ones, sent over real HTTP, never gets a
batch-level error; every valid event is stored exactly once, every invalid one is rejected by
its index with a reason (issue 11, part 1).

Valid events go to the edges of every bound: any unicode (NUL, lone surrogates) in every
string, paths of 4 KB that do not compress, numbers at their maxima, payloads 64 deep, times
from 1970 to tomorrow. Arbitrary ones are valid events with some fields replaced by anything
(huge and negative numbers, NaN and infinities, extreme dates, deep and wide JSON, long
strings, wrong types) or missing, or not events at all. Bodies are written by the standard
library's encoder (NaN/Infinity literals, surrogates as escapes) and some values are spliced in
as raw JSON text (``1e400``, 100,000-deep arrays) that no Python encoder writes. Two runs: one
whose arbitrary events all still decode as wire events (so the body takes the typed fast path
when its payloads and times are the only problem), one with anything (the general path).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from collector.wire import EVENT_KINDS
from tests.factories import INGEST, MACHINE

# --------------------------------------------------------------------------- strategies

CHARS = st.one_of(st.characters(), st.characters(categories=["Cs"]), st.just("\x00"))


def text(max_size: int, min_size: int = 0) -> st.SearchStrategy[str]:
    return st.text(CHARS, min_size=min_size, max_size=max_size)


def incompressible(n: int) -> str:
    """n characters of hex digits in path components (btree entries are compressed first)."""
    out, i = "", 0
    while len(out) < n:
        out += "/" + hashlib.sha256(f"{n}:{i}".encode()).hexdigest()
        i += 1
    return out[:n]


def long_or(max_size: int) -> st.SearchStrategy[str]:
    """Any text up to max_size, or (often) an incompressible one close to it."""
    return st.one_of(text(min(max_size, 40)),
                     st.integers(max(1, max_size - 200), max_size).map(incompressible))


NOW = datetime.now(timezone.utc)
ZONES = st.sampled_from([timezone.utc, timezone(timedelta(hours=5, minutes=30)),
                         timezone(timedelta(hours=-11))])
VALID_TS = st.datetimes(min_value=datetime(1970, 1, 2), max_value=(NOW + timedelta(hours=12)).replace(tzinfo=None),
                        timezones=ZONES).map(lambda d: d.isoformat())

JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                         st.floats(allow_nan=False, allow_infinity=False), text(30))


def json_values(max_leaves: int = 20) -> st.SearchStrategy:
    return st.recursive(JSON_SCALARS, lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(text(12), inner, max_size=5)), max_leaves=max_leaves)


def nested(depth: int, leaf: object = 1) -> object:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


VALID_PAYLOAD = st.one_of(st.none(), json_values(),
                          st.integers(1, 64).map(nested),  # up to the bound
                          st.dictionaries(text(20), JSON_SCALARS, min_size=50, max_size=200))  # wide
MAX_INT64, MAX_INT32, MAX_COUNT = 2**63 - 1, 2**31 - 1, 10**12

OPTIONAL = {
    "parentSession": text(255, 1),
    "project": st.fixed_dictionaries({}, optional={
        "remote": st.one_of(text(100), st.just("git@github.com:acme/x.git"), long_or(1024)),
        "path": long_or(4096), "name": text(255), "branch": text(255), "commit": text(64)}),
    "workspace": long_or(4096),
    "seq": st.one_of(st.integers(0, MAX_INT64), st.just(MAX_INT64)),
    "agentVersion": text(64), "model": text(128), "provider": text(64),
    "tokens": st.fixed_dictionaries({}, optional={
        k: st.one_of(st.integers(0, MAX_COUNT), st.just(MAX_COUNT))
        for k in ("input", "output", "cacheRead", "cacheWrite", "cacheWrite5m", "cacheWrite1h",
                  "reasoning")} | {"estimated": st.booleans()}),
    "costUsd": st.one_of(st.floats(0, 9_999_999_999.99), st.just(9_999_999_999.99)),
    "durationMs": st.integers(0, MAX_COUNT),
    "stopReason": text(64), "toolName": text(255),
    "toolCategory": st.sampled_from(["file_read", "file_write", "file_edit", "shell", "search",
                                     "web", "mcp", "subagent", "todo", "other"]),
    "toolCallId": text(255), "status": st.sampled_from(["ok", "error", "cancelled", "rejected"]),
    "filePath": long_or(4096),
    "linesAdded": st.integers(0, MAX_INT32), "linesRemoved": st.integers(0, MAX_INT32),
    "command": text(300), "content": st.one_of(text(500), long_or(20_000)), "error": text(300),
    "payload": VALID_PAYLOAD,
}


@st.composite
def valid_event(draw) -> dict:
    e = {"id": str(uuid.uuid4()), "kind": draw(st.sampled_from(EVENT_KINDS)), "ts": draw(VALID_TS),
         "agent": draw(text(32, 1)), "session": draw(st.one_of(text(255, 1), st.just("s"))),
         "machine": draw(st.one_of(text(255, 1), st.just(MACHINE["key"])))}
    for name in draw(st.lists(st.sampled_from(sorted(OPTIONAL)), unique=True, max_size=12)):
        e[name] = draw(OPTIONAL[name])
    return e


# Raw JSON spliced into the body in place of a marker string: what no Python encoder writes.
RAW = ["1e400", "-1e999999", "1e131072", "1" + "0" * 5000, "[" * 100_000 + "]" * 100_000,
       "[" * 1000 + "]" * 1000, "{\"a\":" * 65 + "1" + "}" * 65]
MARKERS = st.integers(0, len(RAW) - 1).map(lambda i: f"@@raw-{i}@@")

OUT_OF_RANGE_TS = st.sampled_from([
    "9999-12-31T23:59:59.999999Z", "0001-01-01T00:00:00+05:00", "0001-01-01T00:00:00-05:00",
    "9999-12-31T23:59:59-05:00", "1969-12-31T23:59:59.999999Z", "2999-01-01T00:00:00Z",
    (NOW + timedelta(days=2)).isoformat()])
EXTREME_TS = st.one_of(OUT_OF_RANGE_TS, st.sampled_from(
    ["2026-02-30T00:00:00Z", "yesterday", "2026-11-20T09:00:00", "+275760-09-13T00:00:00Z"]))

# Values that keep an event decodable as a wire event (the typed decode takes them): out of
# bounds only by time, payload depth or payload numbers.
TYPED_NASTY = {
    "ts": OUT_OF_RANGE_TS,
    "payload": st.one_of(MARKERS, st.integers(65, 300).map(nested), VALID_PAYLOAD),
}
NASTY = st.one_of(
    st.integers(-(2**80), 2**80), st.sampled_from([2**63, 2**31, -1, MAX_COUNT + 1, 10**400, 0]),
    st.floats(), st.sampled_from([float("nan"), float("inf"), float("-inf"), 1e10, -0.0]),
    text(100), st.integers(256, 30_000).map(incompressible), st.integers(1, 300).map(lambda n: "\x00" * n),
    EXTREME_TS, MARKERS, st.none(), st.booleans(), json_values(), st.integers(65, 500).map(nested),
)
FIELDS = ["id", "kind", "ts", "agent", "session", "machine", *OPTIONAL, "tokens.input",
          "tokens.output", "project.path", "project.name", "unknownField"]


@st.composite
def arbitrary_event(draw, typed_only: bool) -> object:
    e = draw(valid_event())
    if typed_only:
        for name in draw(st.lists(st.sampled_from(sorted(TYPED_NASTY)), min_size=1, unique=True)):
            e[name] = draw(TYPED_NASTY[name])
        return e
    if draw(st.integers(0, 9)) == 0:  # not an event at all
        return draw(NASTY)
    for name in draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=3, unique=True)):
        if draw(st.integers(0, 5)) == 0 and name in e:
            del e[name]
            continue
        value = draw(NASTY)
        if "." in name:
            outer, inner = name.split(".")
            if not isinstance(e.get(outer), dict):
                e[outer] = {}
            e[outer][inner] = value
        else:
            e[name] = value
    return e


@st.composite
def batches(draw, typed_only: bool) -> tuple[list, set[int]]:
    """(events, indices of the valid ones)."""
    n = draw(st.integers(1, 10))
    valid = set(draw(st.lists(st.integers(0, n - 1), unique=True, max_size=n)))
    events = [draw(valid_event()) if i in valid else draw(arbitrary_event(typed_only))
              for i in range(n)]
    return events, valid


# --------------------------------------------------------------------------- the property


def encode(events: list) -> bytes:
    body = json.dumps({"query": INGEST, "variables": {"batch": {"events": events, "machines": [MACHINE]}}})
    for i, raw in enumerate(RAW):
        body = body.replace(f'"@@raw-{i}@@"', raw)
    return body.encode("ascii")  # the encoder escapes every non-ASCII character


def stored_id(e: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(e["id"]) if isinstance(e, dict) and isinstance(e.get("id"), str) else None
    except ValueError:
        return None


async def check(client: httpx.AsyncClient, url: str, events: list, valid: set[int]) -> None:
    response = await client.post("/graphql", content=encode(events),
                                 headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text[:1000]
    body = response.json()
    assert "errors" not in body, body["errors"]
    result = body["data"]["ingestEvents"]
    rejected = {r["index"]: r for r in result["rejected"]}
    note(f"rejected: {[(i, r['reason'][:200]) for i, r in sorted(rejected.items())]}")
    assert len(rejected) == len(result["rejected"])  # each index once
    assert not valid & set(rejected), "a valid event was rejected"
    assert all(0 <= i < len(events) and r["reason"] for i, r in rejected.items())
    assert result["duplicates"] == 0  # every id is fresh
    assert result["accepted"] + len(rejected) == len(events)
    kept = {stored_id(e) for i, e in enumerate(events) if i not in rejected}
    assert None not in kept  # an accepted event had a valid id
    refused = {stored_id(e) for i, e in enumerate(events) if i in rejected} - {None} - kept
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT id, count(*) AS n FROM agent_event WHERE id = ANY($1::uuid[]) "
                                "GROUP BY id", [*kept, *refused])
    finally:
        await conn.close()
    counts = {r["id"]: r["n"] for r in rows}
    assert counts == dict.fromkeys(kept, 1), "every accepted event is stored exactly once, no other"


PROPERTY = settings(max_examples=40, deadline=None, derandomize=False, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture,
                                           HealthCheck.filter_too_much, HealthCheck.large_base_example])


@pytest.mark.slow
@PROPERTY
@given(batch=batches(typed_only=True))
async def test_typed_bodies_never_fail_whole(client, database_url, batch) -> None:
    await check(client, database_url, *batch)


@pytest.mark.slow
@PROPERTY
@given(batch=batches(typed_only=False))
async def test_any_batch_never_fails_whole(client, database_url, batch) -> None:
    await check(client, database_url, *batch)
