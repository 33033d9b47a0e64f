"""Users' price aliases against the real server and database: applied at ingest (the in-memory
PriceBook) and by recompute, stored in the database, shown "priced as" on the pages and in
GraphQL. Names are unique per run (the database is shared by the run's tests)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from app.ingest.identity import session_id
from app.pricing.price_file import PriceFileError
from app.services import keys, prices, recompute
from tests.app.test_ingest import ingest as ingest_as
from tests.factories import event
from tests.helpers import gql

DAY = datetime(2021, 6, 7, 9, 0, tzinfo=UTC)  # a day of its own, far from other tests' events
TOKENS = {"input": 1000, "output": 2000, "cacheRead": 10_000}
GPT5 = (1000 * 1.25 + 2000 * 10 + 10_000 * 0.125) / 1e6  # openai/gpt-5, USD per million tokens


async def _calls(url: str, native: str) -> list[tuple]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT seq, cost_usd, cost_source FROM agent_event WHERE session_id = $1 "
            "AND kind = 'llm_call' ORDER BY seq", session_id("codex", native))
    finally:
        await conn.close()
    return [(r["seq"], None if r["cost_usd"] is None else pytest.approx(float(r["cost_usd"])),
             r["cost_source"]) for r in rows]


async def ingest(client, events: list[dict]) -> None:
    """With a key of its own (other tests may have made keys: then ingest needs one)."""
    record, secret = await keys.create(f"alias-{uuid.uuid4().hex[:6]}")
    try:
        await ingest_as(client, events, headers={"Authorization": f"Bearer {secret}"})
    finally:
        await keys.revoke(record.name)


def _call(native: str, n: int, model: str) -> dict:
    return event(native, n, "llm_call", agent="codex", model=model, provider="openai",
                 tokens=TOKENS, ts=DAY + timedelta(seconds=n))


async def test_an_alias_prices_ingest_and_recompute_and_is_shown(client, database_url) -> None:
    name = f"aide-gpt-5-{uuid.uuid4().hex[:8]}"
    native = f"alias-{uuid.uuid4()}"
    await ingest(client, [_call(native, 1, name)])
    assert await _calls(database_url, native) == [(1, None, "unpriced")]

    made = await prices.set_alias(name.upper(), "GPT-5")
    assert (made.name, made.model, made.resolves_to) == (name, "gpt-5", "openai/gpt-5")
    await ingest(client, [_call(native, 2, name)])  # priced at ingest from now on
    assert await _calls(database_url, native) == [(1, None, "unpriced"), (2, GPT5, "computed")]
    done = await recompute.recompute(DAY, DAY + timedelta(days=1))  # the stored one too
    assert done.events == 1 and name not in done.unpriced
    assert await _calls(database_url, native) == [(1, GPT5, "computed"), (2, GPT5, "computed")]

    body = await gql(client, """query($m: String!, $since: DateTime!, $until: DateTime!) {
        priceAliases { name model resolvesTo source }
        prices(model: $m) { provider model }
        modelStats(range: {since: $since, until: $until}) { model pricedAs costUsd }
    }""", {"m": name, "since": DAY.isoformat(), "until": (DAY + timedelta(days=1)).isoformat()})
    assert "errors" not in body, body
    data = body["data"]
    assert {"name": name, "model": "gpt-5", "resolvesTo": "openai/gpt-5",
            "source": "devlog prices alias"} in data["priceAliases"]
    assert {(p["provider"], p["model"]) for p in data["prices"]} == {("openai", "gpt-5")}
    stat = next(s for s in data["modelStats"] if s["model"] == name)
    assert stat["pricedAs"] == "gpt-5" and stat["costUsd"] == pytest.approx(2 * GPT5)
    sid = str(session_id("codex", native))
    body = await gql(client, """query($id: ID!) { session(id: $id) {
        events(first: 5) { edges { node { kind model pricedAs } } } } }""", {"id": sid})
    assert "errors" not in body, body
    nodes = [e["node"] for e in body["data"]["session"]["events"]["edges"]]
    assert {(n["model"], n["pricedAs"]) for n in nodes if n["kind"] == "llm_call"} == {(name, "gpt-5")}

    page = await client.get(f"/sessions/{sid}")
    assert page.status_code == 200 and page.text.count("priced as gpt-5") >= 3  # header + 2 calls
    tools = await client.get(f"/tools?range=custom&since={DAY.date()}&until={DAY.date()}")
    assert tools.status_code == 200 and "priced as gpt-5" in tools.text

    assert await prices.remove_alias(name) is True
    assert await prices.remove_alias(name) is False
    await recompute.recompute(DAY, DAY + timedelta(days=1))
    assert await _calls(database_url, native) == [(1, None, "unpriced"), (2, None, "unpriced")]
    page = await client.get(f"/sessions/{sid}")
    assert "priced as" not in page.text


@pytest.mark.parametrize(("name", "model", "message"), [
    ("aide-x", "surely-not-a-model", "no price for model 'surely-not-a-model'"),
    ("aide-x", "aide-x", "cannot be an alias of itself"),
    ("", "gpt-5", "must not be empty"),
])
async def test_an_alias_to_nothing_is_refused_in_one_line(client, name, model, message) -> None:
    with pytest.raises(PriceFileError) as err:
        await prices.set_alias(name, model)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert "aide-x" not in {a.name for a in await prices.list_aliases()}


async def test_an_alias_of_an_alias_is_refused(client) -> None:
    first = f"aide-a-{uuid.uuid4().hex[:8]}"
    await prices.set_alias(first, "gpt-5")
    try:
        with pytest.raises(PriceFileError) as err:
            await prices.set_alias(f"aide-b-{uuid.uuid4().hex[:8]}", first)
        assert f"{first!r} is itself an alias (of 'gpt-5')" in str(err.value)
    finally:
        await prices.remove_alias(first)
