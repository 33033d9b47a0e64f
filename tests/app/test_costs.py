"""Costs at ingest (real HTTP into the real database): computed from the price table, reported
costs kept, unknown models flagged; session rollups include computed costs. And the SQL of
``devlog prices recompute`` agrees with the Python of ingest to the last stored digit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from app.ingest.identity import session_id
from tests.app.test_ingest import ingest
from tests.factories import BASE_TS, event


async def _calls(url: str, native: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(
            "SELECT seq, model, cost_usd, cost_source FROM agent_event "
            "WHERE session_id = $1 AND kind = 'llm_call' ORDER BY seq",
            session_id("claude-code", native))
    finally:
        await conn.close()


async def _session_cost(url: str, native: str, agent: str = "claude-code"):
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("SELECT cost_usd FROM agent_session WHERE id = $1",
                                   session_id(agent, native))
    finally:
        await conn.close()


# Long before the other tests' events: the models priced here stay out of the ranges the
# dashboard tests look at (the last 7 days' models; nothing in 2024).
PAST = datetime(2021, 3, 1, 9, 0, tzinfo=UTC)


def _call(native: str, n: int, model: str | None, **kw) -> dict:
    tokens = kw.pop("tokens", {"input": 1000, "output": 500, "cacheRead": 20000, "cacheWrite": 3000})
    kw.setdefault("ts", PAST + timedelta(seconds=n))
    return event(native, n, "llm_call", model=model, provider=kw.pop("provider", "anthropic"),
                 tokens=tokens, **kw)


async def test_ingest_computes_keeps_reported_and_flags_unpriced(client, database_url) -> None:
    native = f"cost-{uuid.uuid4()}"
    await ingest(client, [
        _call(native, 1, "claude-sonnet-4-5-20250929"),
        _call(native, 2, "claude-sonnet-4-5-20250929", costUsd=0.5),
        _call(native, 3, "my-local-llama", provider=None),
        _call(native, 4, "claude-opus-4-1-20250805",
              tokens={"input": 10, "output": 100, "cacheWrite": 1000, "cacheWrite1H": 400}),
        _call(native, 5, "anthropic/claude-sonnet-4-5",
              tokens={"input": 150_000, "output": 1000, "cacheRead": 60_000}),  # > 200k prompt
        event(native, 6, "assistant_message", content="done", ts=PAST + timedelta(seconds=6)),
    ])
    calls = {r["seq"]: r for r in await _calls(database_url, native)}
    sonnet = (1000 * 3 + 500 * 15 + 20000 * 0.3 + 3000 * 3.75) / 1e6
    assert calls[1]["cost_source"] == "computed" and float(calls[1]["cost_usd"]) == pytest.approx(sonnet)
    assert (calls[2]["cost_source"], float(calls[2]["cost_usd"])) == ("reported", 0.5)
    assert (calls[3]["cost_source"], calls[3]["cost_usd"]) == ("unpriced", None)
    opus = (10 * 15 + 100 * 75 + 600 * 18.75 + 400 * 30) / 1e6  # 1 h cache writes at their price
    assert float(calls[4]["cost_usd"]) == pytest.approx(opus)
    long = (150_000 * 6 + 1000 * 22.5 + 60_000 * 0.6) / 1e6  # the long-context tier
    assert float(calls[5]["cost_usd"]) == pytest.approx(long)
    total = await _session_cost(database_url, native)
    assert float(total) == pytest.approx(sonnet + 0.5 + opus + long)

    # a later batch of the same session adds its computed cost to the rollup
    await ingest(client, [_call(native, 7, "claude-sonnet-4-5-20250929")])
    assert float(await _session_cost(database_url, native)) == pytest.approx(
        2 * sonnet + 0.5 + opus + long)


async def test_codex_reasoning_is_not_charged_twice(client, database_url) -> None:
    """Codex sends output = output_tokens (reasoning included) and reasoning separately."""
    native = f"codex-{uuid.uuid4()}"
    await ingest(client, [event(native, 1, "llm_call", agent="codex", model="gpt-5-codex",
                                provider="openai", ts=PAST, tokens={"input": 2000, "cacheRead": 8000,
                                                                    "output": 700, "reasoning": 500})])
    cost = await _session_cost(database_url, native, agent="codex")
    assert float(cost) == pytest.approx((2000 * 1.25 + 8000 * 0.125 + 700 * 10) / 1e6)


async def test_recompute_sql_agrees_with_ingest(client, database_url) -> None:
    """Re-pricing with unchanged prices changes nothing: the SQL formula is the Python one."""
    from app.services import recompute

    native = f"agree-{uuid.uuid4()}"
    start = BASE_TS - timedelta(days=400)  # a day of its own (in the past: see bounds.MAX_AHEAD)
    calls = [
        _call(native, 1, "claude-sonnet-4-5", ts=start),
        _call(native, 2, "claude-opus-4-1", ts=start + timedelta(seconds=1),
              tokens={"input": 7, "output": 13, "cacheWrite": 17, "cacheWrite1H": 11}),
        _call(native, 3, "claude-sonnet-4-5", ts=start + timedelta(seconds=2),
              tokens={"input": 199_999, "output": 3, "cacheRead": 1}),
        _call(native, 4, "claude-sonnet-4-5", ts=start + timedelta(seconds=3),
              tokens={"input": 199_999, "output": 3, "cacheRead": 2}),
        _call(native, 5, "gpt-5", provider="openai", ts=start + timedelta(seconds=4),
              tokens={"input": 123_457, "output": 98_765, "reasoning": 5_000}),
        _call(native, 6, "gemini-2.5-pro", provider="google", ts=start + timedelta(seconds=5),
              tokens={"input": 250_001, "output": 1}),
        _call(native, 7, "no-such-model", ts=start + timedelta(seconds=6)),
    ]
    await ingest(client, calls)
    result = await recompute.recompute(start, start + timedelta(days=1))  # the server's pool
    assert result.events == 0 and result.sessions == 0
    assert result.rollup_hours is None  # nothing changed: no rollup hour is redone
    assert result.unpriced == ["no-such-model"]


async def test_prices_query(client) -> None:
    from tests.helpers import gql

    body = await gql(client, """{ one: prices(model: "anthropic/claude-sonnet-4-5-20250929") {
        provider model input output cacheRead cacheWrite cacheWrite1h tiers validFrom validTo }
      none: prices(model: "no-such-model") { model }
      all: prices(provider: "openai") { model } }""")
    assert "errors" not in body, body
    one = body["data"]["one"]
    assert one == [{"provider": "anthropic", "model": "claude-sonnet-4-5", "input": 3.0,
                    "output": 15.0, "cacheRead": 0.3, "cacheWrite": 3.75, "cacheWrite1h": 6.0,
                    "tiers": [{"above": 200000, "input": 6, "output": 22.5, "cache_read": 0.6,
                               "cache_write": 7.5, "cache_write_1h": 12}],
                    "validFrom": None, "validTo": None}]
    assert body["data"]["none"] == []
    assert "gpt-5" in {p["model"] for p in body["data"]["all"]}
