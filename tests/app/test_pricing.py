"""Prices without the database: name matching, dated prices, long-context tiers, cost rules,
price-file validation."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from app.pricing import price_file
from app.pricing.book import PriceBook
from app.pricing.cost import call_cost
from app.pricing.price_file import PriceFileError

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def snapshot() -> PriceBook:
    return PriceBook.from_file(price_file.read(price_file.SNAPSHOT), shipped=True)


def book_of(models: list[dict], providers: list[dict] | None = None) -> PriceBook:
    body = {"models": models, "providers": providers or []}
    return PriceBook.from_file(price_file.read("test.json", data=json.dumps(body).encode()))


@pytest.mark.parametrize(("name", "provider", "expected"), [
    ("claude-sonnet-4-5-20250929", "anthropic", "anthropic/claude-sonnet-4-5"),
    ("claude-sonnet-4-5", None, "anthropic/claude-sonnet-4-5"),
    ("Claude-Sonnet-4-5", None, "anthropic/claude-sonnet-4-5"),
    ("claude-opus-4-1-20250805", None, "anthropic/claude-opus-4-1"),
    ("claude-opus-4-5-20251101", "anthropic", "anthropic/claude-opus-4-5"),
    ("claude-haiku-4-5-20251001", None, "anthropic/claude-haiku-4-5"),
    ("anthropic/claude-sonnet-4-5", None, "anthropic/claude-sonnet-4-5"),
    ("openai/gpt-5", None, "openai/gpt-5"),
    ("gpt-5", "openai", "openai/gpt-5"),
    ("gpt-5-codex", "openai", "openai/gpt-5"),   # an alias of gpt-5 in the snapshot
    ("gpt-5-mini", None, "openai/gpt-5-mini"),
    ("o3", "openai", "openai/o3"),
    ("o4-mini", None, "openai/o4-mini"),
    ("gpt-4.1", None, "openai/gpt-4.1"),
    ("gemini-2.5-pro", None, "google/gemini-2.5-pro"),
    ("gemini-2.5-flash", "google", "google/gemini-2.5-flash"),
    # Copilot's own price list first, then the model's maker
    ("claude-sonnet-4", "github-copilot", "github-copilot/claude-sonnet-4"),
    ("gpt-4o", "github-copilot", "openai/gpt-4o"),
])
def test_snapshot_resolves_what_coding_agents_report(snapshot, name, provider, expected) -> None:
    found = snapshot.resolve(name, provider)
    assert found is not None, name
    assert f"{found.provider}/{found.model}" == expected
    assert found.price_at(NOW) is not None


@pytest.mark.parametrize("name", ["my-local-llama", "", None, "claude-nonexistent-9"])
def test_unknown_models_are_not_guessed(snapshot, name) -> None:
    assert snapshot.resolve(name, None) is None
    assert snapshot.cost(name, None, NOW, 1000, 1000) is None


def test_snapshot_prices_match_the_published_ones(snapshot) -> None:
    sonnet = snapshot.price("claude-sonnet-4-5-20250929", "anthropic", NOW)
    assert sonnet.prices == {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75,
                             "cache_write_1h": 6}
    gpt5 = snapshot.price("gpt-5", "openai", NOW)
    assert (gpt5.prices["input"], gpt5.prices["output"], gpt5.prices["cache_read"]) == (1.25, 10, 0.125)


def test_exact_names_win_over_patterns_and_files_over_the_snapshot() -> None:
    book = book_of([
        {"provider": "acme", "model": "coder", "match": {"starts_with": "coder"},
         "prices": [{"input": 1, "output": 2}]},
        {"provider": "acme", "model": "coder-pro", "prices": [{"input": 10, "output": 20}]},
    ], [{"id": "acme", "model_match": {"starts_with": "coder"}}])
    assert book.resolve("coder-pro").model == "coder-pro"  # exact id before the pattern
    assert book.resolve("coder-pro-20260101").model == "coder"  # patterns: first in file order
    assert book.resolve("coder-mini").model == "coder"
    assert book.resolve("acme/coder-pro").model == "coder-pro"
    assert book.resolve("coder-pro", "somebody-else").model == "coder-pro"  # unknown hint: by name
    # a file's model overrides the snapshot's for the names it matches
    snap = PriceBook.from_file(price_file.read(price_file.SNAPSHOT), shipped=True)
    mine = book_of([{"provider": "anthropic", "model": "claude-sonnet-4-5",
                     "match": {"starts_with": "claude-sonnet-4-5"},
                     "prices": [{"input": 1, "output": 1}]}])
    both = PriceBook(snap.providers, snap.models + mine.models)
    assert both.price("claude-sonnet-4-5-20250929", "anthropic", NOW).prices["input"] == 1


def test_prices_are_dated() -> None:
    book = book_of([{"provider": "acme", "model": "m", "prices": [
        {"valid_from": None, "input": 1, "output": 1},
        {"valid_from": "2026-06-01", "input": 2, "output": 2},
        {"valid_from": "2026-09-01T12:00:00+00:00", "input": 3, "output": 3}]}])
    at = lambda *a: book.price("m", None, datetime(*a, tzinfo=UTC)).prices["input"]
    assert at(2020, 1, 1) == 1
    assert at(2026, 5, 31, 23, 59) == 1
    assert at(2026, 6, 1) == 2
    assert at(2026, 9, 1, 11, 59) == 2
    assert at(2026, 9, 1, 12, 0) == 3
    assert at(2030, 1, 1) == 3


def test_a_model_priced_only_from_a_date_is_unpriced_before() -> None:
    book = book_of([{"provider": "acme", "model": "m", "prices": [
        {"valid_from": "2026-06-01", "input": 2, "output": 2}]}])
    assert book.cost("m", None, datetime(2026, 5, 1, tzinfo=UTC), 10, 10) is None
    assert book.cost("m", None, datetime(2026, 7, 1, tzinfo=UTC), 10, 10) == pytest.approx(40e-6)


def test_long_context_tier_applies_to_the_whole_call_above_the_threshold(snapshot) -> None:
    price = snapshot.price("claude-sonnet-4-5-20250929", "anthropic", NOW)
    # 150k input + 50k cache read = 200k prompt tokens: not above 200k, base prices
    base = call_cost(price, 150_000, 1_000, 50_000, 0, None, 0)
    assert base == pytest.approx((150_000 * 3 + 1_000 * 15 + 50_000 * 0.3) / 1e6)
    # one more cache-write token: every bucket at the long-context prices
    tier = call_cost(price, 150_000, 1_000, 50_000, 1, None, 0)
    assert tier == pytest.approx((150_000 * 6 + 1_000 * 22.5 + 50_000 * 0.6 + 1 * 7.5) / 1e6)


def test_cost_buckets() -> None:
    book = book_of([
        {"provider": "acme", "model": "full", "prices": [{
            "input": 2, "output": 10, "cache_read": 0.2, "cache_write": 2.5,
            "cache_write_1h": 4, "reasoning": 5}]},
        {"provider": "acme", "model": "plain", "prices": [{"input": 1, "output": 4}]},
    ])
    full = book.price("full", None, NOW)
    # 1h writes at their price, the rest of the writes at the 5 m price
    assert call_cost(full, 0, 0, 0, 100, 40, 0) == pytest.approx((60 * 2.5 + 40 * 4) / 1e6)
    # 1h unknown: all writes at the 5 m price
    assert call_cost(full, 0, 0, 0, 100, None, 0) == pytest.approx(100 * 2.5 / 1e6)
    # output includes reasoning: reasoning at its own price, the rest of output at output's
    assert call_cost(full, 0, 100, 0, 0, None, 30) == pytest.approx((70 * 10 + 30 * 5) / 1e6)
    plain = book.price("plain", None, NOW)
    # no cache prices: cache reads and writes cost the input price; reasoning is part of output
    assert call_cost(plain, 10, 100, 20, 30, 5, 40) == pytest.approx((60 * 1 + 100 * 4) / 1e6)


@pytest.mark.parametrize(("body", "message"), [
    (b"{not json", "not valid JSON"),
    (b'{"models": []}', "no models"),
    (b'{"models": [{"provider": "a", "model": "m", "prices": [{"input": "x"}]}]}',
     "Expected `float | null`, got `str` - at `$.models[0].prices[0].input`"),
    (b'{"models": [{"provider": "a", "model": "m", "prices": [{"input": -1}]}]}',
     "Expected `float` >= 0"),
    (b'{"models": [{"provider": "a", "model": "m", "prices": [{"inputs": 1}]}]}',
     "unknown field `inputs`"),
    (b'{"models": [{"provider": "a", "model": "m", "prices": [{"cache_read": 1}]}]}',
     "needs at least an input or output price"),
    (b'{"models": [{"provider": "a", "model": "m", "prices": [{"valid_from": "soon", "input": 1}]}]}',
     "valid_from 'soon' is not a date"),
    (b'{"models": [{"provider": "a", "model": "m", "match": {"glob": "m*"}, "prices": [{"input": 1}]}]}',
     "unknown match clause 'glob'"),
    (b'{"models": [{"provider": "a", "model": "m", "match": {"regex": "("}, "prices": [{"input": 1}]}]}',
     "bad regex"),
    (b'{"models": [{"provider": "a", "model": "m", "prices": [{"input": 1}, {"input": 2}]}]}',
     "two prices valid from None"),
])
def test_bad_price_files_say_what_is_wrong_in_one_line(body, message) -> None:
    with pytest.raises(PriceFileError) as err:
        price_file.read("prices.json", data=body)
    text = str(err.value)
    assert message in text and text.startswith("price file prices.json") and "\n" not in text


def test_snapshot_carries_its_source_and_notice() -> None:
    data = price_file.read(price_file.SNAPSHOT)
    assert data.source.startswith("genai-prices ")
    assert "MIT License" in data.notice and "pydantic/genai-prices" in data.notice


# -- users' aliases --------------------------------------------------------------------------------


def test_an_alias_prices_a_name_nobody_lists_as_its_target(snapshot) -> None:
    book = PriceBook(snapshot.providers, snapshot.models, {"aide-gpt-5": "gpt-5"})
    gpt5 = snapshot.resolve("gpt-5", "openai")
    for name, provider in (("aide-gpt-5", "openai"), ("AIDE-GPT-5", None), ("openai/aide-gpt-5", None),
                           ("azure/aide-gpt-5", None)):
        assert book.resolve(name, provider) is gpt5, name
        assert book.priced_as(name) == "gpt-5"
        assert book.cost(name, provider, NOW, 1000, 2000) == snapshot.cost("gpt-5", "openai", NOW, 1000, 2000)
    assert snapshot.resolve("aide-gpt-5", "openai") is None  # without the alias: unpriced
    assert book.priced_as("gpt-5") is None and book.priced_as(None) is None


def test_an_alias_wins_over_a_price_of_its_own_and_does_not_chain(snapshot) -> None:
    book = PriceBook(snapshot.providers, snapshot.models,
                     {"gpt-5": "gpt-5-mini", "fast": "gpt-5"})
    assert book.resolve("gpt-5", "openai").model == "gpt-5-mini"
    assert book.resolve("fast", "openai").model == "gpt-5"  # gpt-5's own price, not its alias's
    assert book.resolve_plain("gpt-5", "openai").model == "gpt-5"


def test_a_price_file_may_hold_aliases_alone() -> None:
    data = price_file.read("a.json", data=b'{"aliases": {"Aide-GPT-5": "gpt-5"}}')
    assert data.aliases == {"aide-gpt-5": "gpt-5"} and data.models == []
    assert PriceBook.from_file(data).priced_as("aide-gpt-5") == "gpt-5"


@pytest.mark.parametrize(("aliases", "message"), [
    ({"x": "X"}, "a name cannot be an alias of itself"),
    ({"x": " "}, "must not be empty"),
    ({"x": "y", "y": "gpt-5"}, "'y' is itself an alias"),
    ({"x": "m" * 129}, "length <= 128"),
])
def test_bad_aliases_in_a_price_file_say_what_is_wrong(aliases, message) -> None:
    with pytest.raises(PriceFileError) as err:
        price_file.read("prices.json", data=json.dumps({"aliases": aliases}).encode())
    assert message in str(err.value) and "\n" not in str(err.value)
