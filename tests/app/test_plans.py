"""Subscription plans: Claude's 5-hour blocks and Codex's rate-limit windows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx

from app.ingest.identity import machine_id
from app.services.plans import blocks_of
from tests.factories import MACHINE, event
from tests.helpers import gql

T0 = datetime(2026, 11, 25, 10, 15, tzinfo=UTC)


def call(minutes: float, tokens: int = 100, cost: float | None = 0.5) -> dict:
    return {"ts": T0 + timedelta(minutes=minutes), "tokens_input": tokens, "tokens_output": tokens,
            "tokens_cache_read": 0, "tokens_cache_write": 0, "cost_usd": cost, "model": "claude-sonnet-4-5"}


def test_blocks_start_on_the_hour_and_last_five_hours() -> None:
    calls = [call(0), call(45), call(284), call(295), call(600)]  # 10:15 11:00 14:59 | 15:10 | 20:15
    now = T0 + timedelta(minutes=660)  # 21:15
    blocks = blocks_of(calls, now)
    assert [(b.start.hour, b.end.hour, b.calls) for b in blocks] == [(10, 15, 3), (15, 20, 1), (20, 1, 1)]
    assert [b.active for b in blocks] == [False, False, True]
    current = blocks[-1]
    # 200 tokens in the 75 minutes since 20:00; 225 minutes left at that rate.
    assert current.tokens_per_minute == round(200 / 75, 1)
    assert current.minutes_left == 225
    assert current.projected_tokens == int(200 + 200 / 75 * 225)
    assert current.cost_per_hour == round(0.5 / 75 * 60, 4)
    assert blocks[0].tokens_per_minute is None  # a finished block has no burn rate
    assert blocks_of([call(0, cost=None)], T0).pop().cost_usd is None


async def test_plans_query_reports_the_current_block_and_codex_windows(client: httpx.AsyncClient) -> None:
    key = f"plans-{uuid.uuid4().hex[:8]}"
    machine = {**MACHINE, "key": key, "hostname": key}
    now = datetime.now(UTC)
    ctx = {"machine": key, "project": {"path": "/w"}}
    events = [event(f"{key}-c", i, "llm_call", agent="claude-code", ts=now - timedelta(minutes=m),
                    model="claude-sonnet-4-5", tokens={"input": 10, "output": 90, "cacheRead": 900},
                    **ctx) for i, m in enumerate((50, 30, 5))]
    limits = lambda used, at: {"primary": {"used_percent": used, "window_minutes": 300,
                                           "resets_at": int((now + timedelta(hours=2)).timestamp())},
                               "secondary": {"used_percent": 3.0, "window_minutes": 10080,
                                             "resets_in_seconds": 86400},
                               "plan_type": "plus"}
    events += [event(f"{key}-x", i, "system", agent="codex", ts=now - timedelta(minutes=m),
                     payload=limits(used, m), content="rate limits", **ctx)
               for i, (m, used) in enumerate(((61, 10.0), (31, 15.0), (1, 20.0)))]
    body = await gql(client, """mutation($batch: EventBatch!) { ingestEvents(batch: $batch) { accepted } }""",
                     {"batch": {"events": events, "machines": [machine]}})
    assert body["data"]["ingestEvents"]["accepted"] == 6, body
    q = """query($m: ID) { plans(machine: $m) {
             claudeBlocks { start end active calls tokens { input output cacheRead total }
                            tokensPerMinute projectedTokens minutesLeft models }
             codexWindows { name windowMinutes usedPercent resetsAt pointsPerHour projectedPercent plan } } }"""
    plans = (await gql(client, q, {"m": str(machine_id(key))}))["data"]["plans"]
    current = plans["claudeBlocks"][0]
    assert current["active"] and current["calls"] == 3 and current["tokens"]["total"] == 3000
    assert current["models"] == ["claude-sonnet-4-5"] and current["minutesLeft"] > 0
    assert current["projectedTokens"] >= 3000
    windows = {w["name"]: w for w in plans["codexWindows"]}
    primary = windows["primary"]
    assert primary["usedPercent"] == 20.0 and primary["windowMinutes"] == 300 and primary["plan"] == "plus"
    assert abs(primary["pointsPerHour"] - 10.0) < 0.1  # 10 → 20 % in an hour
    assert abs(primary["projectedPercent"] - 40.0) < 0.5  # two more hours at that rate
    assert windows["secondary"]["resetsAt"] is not None
    other = (await gql(client, q, {"m": str(uuid.uuid4())}))["data"]["plans"]
    assert other == {"claudeBlocks": [], "codexWindows": []}
