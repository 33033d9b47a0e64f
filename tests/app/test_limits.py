"""Operation limits over real HTTP: the largest operations a real client sends pass; abusive
ones get one GraphQL error with extensions.code LIMIT_EXCEEDED and run nothing."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from graphql import get_introspection_query, parse, validate

from app.gql.cost import LIST_SIZES, object_list_fields
from app.gql.limits import DEFAULT, document_rule
from app.gql.schema import schema
from tests.app.test_live import next_payload, open_ws, subscribe
from tests.factories import INGEST, MACHINE, conversation, event
from tests.helpers import REPO, gql

OPERATIONS = REPO / "graphql" / "operations"


def operation(file: str) -> str:
    """A shipped operations file (it may hold several; operationName picks one)."""
    return (OPERATIONS / file).read_text(encoding="utf-8")


async def run(client: httpx.AsyncClient, query: str, variables: dict | None = None,
              operation_name: str | None = None) -> dict:
    response = await client.post("/graphql", json={"query": query, "variables": variables or {},
                                                   "operationName": operation_name})
    assert response.status_code == 200, response.text
    return response.json()


def refused(body: dict, setting: str) -> dict:
    """The one error a limit answers with, before anything ran (no data)."""
    assert body.get("data") is None, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED", error
    assert error["extensions"]["setting"] == setting, error
    assert setting in error["message"]
    return error


def ago(**delta: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(**delta)).isoformat()


@pytest.fixture
async def some_session(client: httpx.AsyncClient) -> str:
    native = f"lim-{uuid.uuid4().hex[:8]}"
    body = await gql(client, INGEST, {"batch": {"events": conversation(native, turns=4), "machines": [MACHINE]}})
    assert not body["data"]["ingestEvents"]["rejected"]
    found = await gql(client, "query($t: String) { sessions(filter: {text: $t}) { edges { node { id } } } }",
                      {"t": "turn 3: please fix"})
    return found["data"]["sessions"]["edges"][0]["node"]["id"]


# -- what real clients send passes ------------------------------------------------------------


async def test_every_shipped_operation_passes_with_its_largest_variables(
        client: httpx.AsyncClient, some_session: str) -> None:
    long_text = "please fix the flaky parser test " * 7  # the dashboard sends up to 200 characters
    cases = [
        ("sessions.graphql", "Sessions", {"first": 500, "filter": {"text": long_text[:200],
                                                                   "agent": ["claude-code", "codex", "copilot"]}}),
        ("sessions.graphql", "Session", {"id": some_session, "first": 500,
                                         "kinds": ["user_prompt", "llm_call", "tool_call"]}),
        ("sessions.graphql", "Overview", {"timeZone": "Europe/Paris"}),
        ("hierarchy.graphql", "ProjectsAndMachines", {"first": 500}),
        ("health.graphql", "Health", {}),
        ("analytics.graphql", "Usage", {"since": ago(days=90), "bucket": "DAY",
                                        "groupBy": ["AGENT", "MODEL"], "timeZone": "Europe/Paris",
                                        "filter": {"agents": ["claude-code"], "models": ["gpt-5"]}}),
        ("analytics.graphql", "Usage", {"since": ago(days=7), "bucket": "HOUR",
                                        "groupBy": ["AGENT", "MODEL"]}),
        ("analytics.graphql", "Usage", {"since": ago(days=3 * 365), "bucket": "WEEK",
                                        "groupBy": ["PROJECT"]}),
        ("analytics.graphql", "ToolStats", {"since": ago(days=90)}),
        ("analytics.graphql", "ModelStats", {"since": ago(days=90)}),
        ("analytics.graphql", "Plans", {}),
        ("analytics.graphql", "Jobs", {}),
    ]
    for file, name, variables in cases:
        body = await run(client, operation(file), variables, name)
        assert "errors" not in body, (name, variables, body)
        assert body["data"], name

    # the collector's batch: 2,000 events (its batch size) with long texts, as one variable
    native = f"lim-big-{uuid.uuid4().hex[:8]}"
    events = [event(native, i, "assistant_message", content="word " * 2_000) for i in range(2_000)]
    body = await run(client, operation("ingest.graphql"),
                     {"batch": {"events": events, "machines": [MACHINE]}}, "IngestEvents")
    assert "errors" not in body, body
    assert body["data"]["ingestEvents"]["accepted"] == 2_000


async def test_graphiql_introspection_passes(client: httpx.AsyncClient) -> None:
    query = get_introspection_query(descriptions=True, specified_by_url=True,
                                    directive_is_repeatable=True, schema_description=True,
                                    input_value_deprecation=True)
    body = await run(client, query)
    assert "errors" not in body and body["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_shipped_subscriptions_pass(client: httpx.AsyncClient, server: str) -> None:
    native = f"lim-sub-{uuid.uuid4().hex[:8]}"
    await gql(client, INGEST, {"batch": {"events": [event(native, 0, "session_start")], "machines": [MACHINE]}})
    live = (OPERATIONS / "live.graphql").read_text(encoding="utf-8")
    health = (OPERATIONS / "health_subscription.graphql").read_text(encoding="utf-8")
    ws = await open_ws(server)
    try:
        await ws.send(json.dumps({"id": "h", "type": "subscribe", "payload": {
            "query": health, "operationName": "HealthUpdates", "variables": {"everySeconds": 1}}}))
        first = await next_payload(ws)
        assert first["type"] == "next" and first["payload"]["data"]["health"]["database"] == "ok", first
        await ws.send(json.dumps({"id": "h", "type": "complete"}))
        filters = {"agent": ["claude-code", "codex", "copilot"]}
        for sub_id, name, variables in [("e", "EventAdded", {"filter": {**filters, "kinds": ["user_prompt"]}}),
                                        ("s", "SessionUpdated", {"filter": filters})]:
            await ws.send(json.dumps({"id": sub_id, "type": "subscribe", "payload": {
                "query": live, "operationName": name, "variables": variables}}))
        await asyncio.sleep(0.3)  # let both subscriptions register
        await gql(client, INGEST, {"batch": {"events": [event(native, 1, "user_prompt", content="hi")],
                                             "machines": [MACHINE]}})
        seen: set[str] = set()
        while seen != {"e", "s"}:
            message = await next_payload(ws)
            if message.get("id") not in ("e", "s"):
                continue
            assert message["type"] == "next", message
            seen.add(message["id"])
    finally:
        await ws.close()


def test_every_list_field_has_a_size() -> None:
    """A new list field must say how long it can be (app/gql/cost.py)."""
    fields = object_list_fields(schema._schema)
    assert fields and not fields - set(LIST_SIZES), sorted(fields - set(LIST_SIZES))


def test_the_document_rule_is_created_once_per_set_of_limits() -> None:
    """Strawberry's validation cache keys on the rule classes: one class per process keeps it
    hitting (a rule class per request would make every validation a miss)."""
    assert document_rule(DEFAULT) is document_rule(DEFAULT)
    doc = parse("{ health { version } }")
    assert validate(schema._schema, doc, [document_rule(DEFAULT)]) == []


# -- what abusive clients send is refused -------------------------------------------------------


async def test_a_huge_document_is_refused(client: httpx.AsyncClient) -> None:
    padding = "#" + "x" * DEFAULT.query_bytes + "\n"  # a comment: size, not tokens
    refused(await run(client, padding + "{ health { version } }"), "DEVLOG_MAX_QUERY_BYTES")


async def test_too_many_tokens_are_refused(client: httpx.AsyncClient) -> None:
    query = "{ health { " + "version " * DEFAULT.query_tokens + "} }"
    assert len(query) < DEFAULT.query_bytes
    refused(await run(client, query), "DEVLOG_MAX_QUERY_TOKENS")


async def test_ten_thousand_overview_aliases_are_refused(client: httpx.AsyncClient) -> None:
    """The measured abuse (52 s): the size limit stops it before it is even parsed."""
    query = "{ " + " ".join(f"o{i}: overview {{ eventsToday }}" for i in range(10_000)) + " }"
    refused(await run(client, query), "DEVLOG_MAX_QUERY_BYTES")


async def test_too_many_root_fields_are_refused(client: httpx.AsyncClient) -> None:
    n = DEFAULT.root_fields + 1
    query = "{ " + " ".join(f"o{i}: overview {{ eventsToday }}" for i in range(n)) + " }"
    error = refused(await run(client, query), "DEVLOG_MAX_ROOT_FIELDS")
    assert error["extensions"]["found"] == n
    # fragments count where they are spread
    spread = "{ ...A ...B } fragment A on Query { " + " ".join(
        f"a{i}: jobs {{ name }}" for i in range(n // 2 + 1)) + " } fragment B on Query { " + " ".join(
        f"b{i}: jobs {{ name }}" for i in range(n // 2 + 1)) + " }"
    refused(await run(client, spread), "DEVLOG_MAX_ROOT_FIELDS")


async def test_three_hundred_usage_aliases_are_refused(client: httpx.AsyncClient) -> None:
    """The measured abuse (62 s, +360 MB): 300 usage series in a 52 KB request."""
    since = ago(days=300)
    one = ('u{i}: usage(range: {{since: "%s"}}, bucket: HOUR) {{ points {{ start events llmCalls '
           'tokens {{ input output }} costUsd }} }}' % since)
    query = "{ " + " ".join(one.format(i=i) for i in range(300)) + " }"
    assert len(query) > DEFAULT.query_bytes
    refused(await run(client, query), "DEVLOG_MAX_QUERY_BYTES")
    # the same within the document limits: refused by the root fields, then by the cost
    query = "{ " + " ".join(one.format(i=i) for i in range(DEFAULT.root_fields + 1)) + " }"
    refused(await run(client, query), "DEVLOG_MAX_ROOT_FIELDS")
    query = "{ " + " ".join(one.format(i=i) for i in range(DEFAULT.root_fields)) + " }"
    refused(await run(client, query), "DEVLOG_MAX_QUERY_COST")


async def test_too_many_aliases_are_refused(client: httpx.AsyncClient) -> None:
    query = "{ health { " + " ".join(f"v{i}: version" for i in range(DEFAULT.aliases + 1)) + " } }"
    refused(await run(client, query), "DEVLOG_MAX_ALIASES")


async def test_nested_lists_are_refused_by_their_cost(client: httpx.AsyncClient) -> None:
    query = """{ sessions(first: 500) { edges { node { id
                 events(first: 500) { edges { node { id kind content } } } } } } }"""
    error = refused(await run(client, query), "DEVLOG_MAX_QUERY_COST")
    assert error["extensions"]["found"] > DEFAULT.cost
    # `first` given as a variable counts the same
    query = """query($n: Int!) { sessions(first: $n) { edges { node { events(first: $n) { edges { node { id } } } } } } }"""
    refused(await run(client, query, {"n": 500}), "DEVLOG_MAX_QUERY_COST")
    assert "errors" not in await run(client, query, {"n": 20})


async def test_a_statement_per_object_is_costed(client: httpx.AsyncClient) -> None:
    """Session.events runs a statement per session: a hundred of them at once are refused,
    fifty are not."""
    query = "query($n: Int!) { sessions(first: $n) { edges { node { events(first: 1) { edges { cursor } } } } } }"
    refused(await run(client, query, {"n": 100}), "DEVLOG_MAX_QUERY_COST")
    assert "errors" not in await run(client, query, {"n": 50})


async def test_long_texts_are_costed(client: httpx.AsyncClient) -> None:
    """An event's content and payload may be a megabyte each: a page of 500 with both is
    refused, with the content alone it is not."""
    query = "{ events(first: 500) { edges { node { id %s } } } }"
    refused(await run(client, query % "content payload"), "DEVLOG_MAX_QUERY_COST")
    assert "errors" not in await run(client, query % "content")


async def test_a_long_hourly_series_is_refused_by_its_cost(client: httpx.AsyncClient) -> None:
    query = """query($since: DateTime!) { usage(range: {since: $since}, bucket: HOUR, groupBy: [AGENT, MODEL, TOOL]) {
                 points { start events } } }"""
    refused(await run(client, query, {"since": ago(days=3650)}), "DEVLOG_MAX_QUERY_COST")
    assert "errors" not in await run(client, query, {"since": ago(hours=6)})


async def test_a_fragment_bomb_is_refused(client: httpx.AsyncClient) -> None:
    """Each fragment spreads the next twice: 2^40 fields, in a 2 KB document. Measured once per
    fragment, it is refused at once (walking it field by field would never end)."""
    n = 40
    fragments = " ".join(f"fragment F{i} on Session {{ ...F{i + 1} ... on Session {{ ...F{i + 1} }} }}"
                         for i in range(n - 1)) + f" fragment F{n - 1} on Session {{ id }}"
    query = '{ session(id: "00000000-0000-0000-0000-000000000000") { ...F0 } } ' + fragments
    refused(await run(client, query), "DEVLOG_MAX_QUERY_COST")


async def test_deep_nesting_behind_fragments_is_refused(client: httpx.AsyncClient) -> None:
    fragments = " ".join(f"fragment P{i} on Session {{ parent {{ ...P{i + 1} }} }}" for i in range(14))
    query = '{ session(id: "00000000-0000-0000-0000-000000000000") { ...P0 } } ' + fragments + \
        " fragment P14 on Session { id }"
    refused(await run(client, query), "DEVLOG_MAX_QUERY_DEPTH")


async def test_a_ten_megabyte_text_filter_is_refused(client: httpx.AsyncClient) -> None:
    """The measured abuse: a 10 MB text filter ran a 50 s query."""
    query = "query($t: String) { sessions(filter: {text: $t}) { edges { node { id } } } }"
    error = refused(await run(client, query, {"t": "a" * 10_000_000}), "DEVLOG_MAX_TEXT_ARGUMENT")
    assert error["extensions"]["found"] == 10_000_000 and "$t" in error["message"]
    assert "errors" not in await run(client, query, {"t": "a" * DEFAULT.text})


@pytest.mark.parametrize("query, variables", [
    ('{ sessions(filter: {text: "%s"}) { edges { cursor } } }' % ("x" * (DEFAULT.text + 1)), None),
    ("query($f: SessionFilterInput) { sessions(filter: $f) { edges { cursor } } }", {"f": {"text": "x" * (DEFAULT.text + 1)}}),
    ("query($f: EventFilterInput) { events(filter: $f) { edges { cursor } } }", {"f": {"toolName": "x" * (DEFAULT.text + 1)}}),
    ('{ prices(model: "%s") { model } }' % ("m" * (DEFAULT.text + 1)), None),
    ("query($m: String) { prices(model: $m, provider: $m) { model } }", {"m": "m" * (DEFAULT.text + 1)}),
    ('{ overview(timeZone: "%s") { eventsToday } }' % ("Z" * (DEFAULT.text + 1)), None),
    ("query($f: UsageFilterInput) { modelStats(range: {since: \"2026-01-01T00:00:00Z\"}, filter: $f) { model } }",
     {"f": {"models": ["m" * (DEFAULT.text + 1)]}}),
])
async def test_every_text_argument_is_limited(client: httpx.AsyncClient, query: str, variables: dict | None) -> None:
    refused(await run(client, query, variables), "DEVLOG_MAX_TEXT_ARGUMENT")


@pytest.mark.parametrize("query, variables", [
    ("query($f: UsageFilterInput) { toolStats(range: {since: \"2026-01-01T00:00:00Z\"}, filter: $f) { tool } }",
     {"f": {"tools": [f"t{i}" for i in range(DEFAULT.items + 1)]}}),
    ("query($a: [String!]) { sessions(filter: {agent: $a}) { edges { cursor } } }", {"a": ["codex"] * (DEFAULT.items + 1)}),
    ("{ sessions(filter: {agent: [%s]}) { edges { cursor } } }" % ",".join(['"x"'] * (DEFAULT.items + 1)), None),
])
async def test_every_list_argument_is_limited(client: httpx.AsyncClient, query: str, variables: dict | None) -> None:
    refused(await run(client, query, variables), "DEVLOG_MAX_LIST_ARGUMENT")


async def test_limits_are_documented() -> None:
    """README's Limits section names every limit setting with its default."""
    from app.settings import Settings, env_name, field_docs

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Limits", 1)[1].split("\n## ", 1)[0]
    defaults = Settings()
    for field in field_docs():
        if field.startswith("max_query") or field in ("max_root_fields", "max_aliases", "max_text_argument",
                                                      "max_list_argument", "read_timeout_seconds"):
            value = getattr(defaults, field)
            shown = f"{value:,}" if isinstance(value, int) else f"{value:g}"
            assert re.search(rf"`{env_name(field)}`[^\n]*{re.escape(shown)}", section), (field, shown)
