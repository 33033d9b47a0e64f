"""`devlog prices list|show|load|recompute` as a subprocess against the run's database."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import uuid
from datetime import timedelta

import asyncpg
import pytest

from app.ingest.identity import session_id
from app.services import keys
from tests.app.test_ingest import ingest
from tests.factories import BASE_TS, event
from tests.helpers import devlog_cmd, subprocess_env


def _prices(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(devlog_cmd("prices", *args), capture_output=True, text=True,
                          timeout=180, env=subprocess_env(DEVLOG_DATABASE_URL=url,
                                                          COLUMNS="120"), check=False)


async def _run(url: str, *args: str) -> subprocess.CompletedProcess:
    """In a thread: the in-process server (its rollup job holds a lock recompute waits for)
    must keep running meanwhile."""
    return await asyncio.to_thread(_prices, url, *args)


async def _state(url: str, native: str) -> tuple[list, object]:
    conn = await asyncpg.connect(url)
    try:
        sid = session_id("claude-code", native)
        calls = await conn.fetch("SELECT seq, cost_usd, cost_source FROM agent_event "
                                 "WHERE session_id = $1 AND kind = 'llm_call' ORDER BY seq", sid)
        cost = await conn.fetchval("SELECT cost_usd FROM agent_session WHERE id = $1", sid)
    finally:
        await conn.close()
    return [(r["seq"], None if r["cost_usd"] is None else float(r["cost_usd"]), r["cost_source"])
            for r in calls], cost


async def test_load_then_recompute_prices_stored_calls(client, database_url, tmp_path) -> None:
    model = f"acme-coder-{uuid.uuid4().hex[:8]}"
    native = f"prices-cli-{uuid.uuid4()}"
    day = BASE_TS - timedelta(days=100)  # it and day + 40 in the past (ingest refuses the future)
    tokens = {"input": 1000, "output": 2000, "cacheRead": 10_000}
    record, secret = await keys.create(f"prices-{uuid.uuid4().hex[:6]}")  # other tests made keys
    try:
        await ingest(client, _calls(native, model, day, tokens),
                     headers={"Authorization": f"Bearer {secret}"})
    finally:
        await keys.revoke(record.name)
    await _check(database_url, native, model, day, tmp_path)


def _calls(native: str, model: str, day, tokens: dict) -> list[dict]:
    return [
        event(native, 1, "llm_call", model=model, provider="acme", tokens=tokens, ts=day),
        event(native, 2, "llm_call", model=f"{model}-20260101", tokens=tokens,
              ts=day + timedelta(days=40)),  # after the price change below
        event(native, 3, "llm_call", model=model, tokens=tokens, costUsd=0.25,
              ts=day + timedelta(seconds=3)),
    ]


async def _check(database_url: str, native: str, model: str, day, tmp_path) -> None:
    calls, cost = await _state(database_url, native)
    assert calls == [(1, None, "unpriced"), (2, None, "unpriced"), (3, 0.25, "reported")]
    assert float(cost) == 0.25

    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"source": "acme contract", "models": [{
        "provider": "acme", "model": model, "name": "Acme Coder", "prices": [
            {"valid_from": None, "input": 1, "output": 10, "cache_read": 0.1},
            {"valid_from": (day + timedelta(days=20)).date().isoformat(),
             "input": 2, "output": 20, "cache_read": 0.2}]}]}))
    loaded = await _run(database_url, "load", str(prices))
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "loaded 2 prices of 1 models from acme contract"

    shown = await _run(database_url, "show", f"{model}-20260101")
    assert shown.returncode == 0, shown.stderr
    assert f"acme/{model}" in shown.stdout and "always" in shown.stdout

    done = await _run(database_url, "recompute", "--since", day.date().isoformat())
    assert done.returncode == 0, done.stderr
    # (other tests' calls in the shared database may be re-priced too: some were stored by SQL)
    repriced = re.match(r"(\d+) LLM calls re-priced, (\d+) sessions updated", done.stdout)
    assert repriced and int(repriced[1]) >= 2 and int(repriced[2]) >= 1, done.stdout
    first = (1000 * 1 + 2000 * 10 + 10_000 * 0.1) / 1e6
    second = (1000 * 2 + 2000 * 20 + 10_000 * 0.2) / 1e6
    calls, cost = await _state(database_url, native)
    assert calls == [(1, pytest.approx(first), "computed"), (2, pytest.approx(second), "computed"),
                     (3, 0.25, "reported")]
    assert float(cost) == pytest.approx(first + second + 0.25)

    again = await _run(database_url, "recompute", "--since", day.date().isoformat())
    assert again.stdout.startswith("0 LLM calls re-priced, 0 sessions updated"), again.stdout

    listed = await _run(database_url, "list", "--search", model)
    assert listed.returncode == 0 and f"acme/{model}" in listed.stdout
    assert "acme contract" in listed.stdout


async def test_bad_price_file_is_one_line(database_url, tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"models": [{"provider": "a", "model": "m", "prices": [{"input": "cheap"}]}]}')
    out = _prices(database_url, "load", str(bad))
    assert out.returncode == 1
    assert out.stderr.strip() == (
        f"devlog: price file {bad}: Expected `float | null`, got `str` - at "
        "`$.models[0].prices[0].input`")
    missing = _prices(database_url, "load", str(tmp_path / "nope.json"))
    assert missing.returncode == 1 and missing.stderr.startswith("devlog: cannot read price file")
    assert "Traceback" not in out.stderr + missing.stderr


def test_unknown_model_is_one_line(database_url) -> None:
    out = _prices(database_url, "show", "surely-not-a-model")
    assert out.returncode == 1 and out.stderr.count("\n") == 1
    assert "no price for model 'surely-not-a-model'" in out.stderr


async def test_alias_set_list_show_load_and_remove(database_url, tmp_path) -> None:
    name = f"aide-gpt-5-{uuid.uuid4().hex[:8]}"
    made = await _run(database_url, "alias", name, "gpt-5")
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith(f"{name} is priced as gpt-5 (openai/gpt-5) from now on")
    listed = await _run(database_url, "alias", "--list")
    assert listed.returncode == 0 and name in listed.stdout and "openai/gpt-5" in listed.stdout
    shown = await _run(database_url, "show", name.upper())
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0].startswith(f"{name.upper()} → priced as gpt-5 (your alias) → openai/gpt-5")

    bad = await _run(database_url, "alias", f"{name}-x", "surely-not-a-model")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1
    assert "no price for model 'surely-not-a-model'" in bad.stderr and "Traceback" not in bad.stderr

    other = f"aide-mini-{uuid.uuid4().hex[:8]}"
    file = tmp_path / "aliases.json"
    file.write_text(json.dumps({"source": "team aliases", "aliases": {other: "gpt-5-mini"}}))
    loaded = await _run(database_url, "load", str(file))
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "loaded 1 alias from team aliases"
    listed = await _run(database_url, "alias")  # no argument: the list
    assert other in listed.stdout and "team aliases" in listed.stdout

    for alias_name in (name, other):
        removed = await _run(database_url, "alias", "--remove", alias_name)
        assert removed.returncode == 0, removed.stderr
    gone = await _run(database_url, "alias", "--remove", name)
    assert gone.returncode == 1 and f"no alias {name!r}" in gone.stderr
    unpriced = await _run(database_url, "show", name)
    assert unpriced.returncode == 1 and "devlog prices alias NAME MODEL" in unpriced.stderr
