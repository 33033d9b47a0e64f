"""``PriceBook``: every priced model by provider, resolving the model names agents report; and
the process-wide book that ingest prices calls with (``current``).

Resolving ``(model, provider)`` as genai-prices does, plus provider prefixes:

1. lower-case; a ``provider/`` prefix of the name is a provider hint when the event names none
   (``anthropic/claude-sonnet-4-5``); the name is tried whole, then without each prefix;
2. with a provider hint (the event's ``provider``, e.g. ``anthropic``, ``openai``,
   ``github-copilot``): that provider (by id, else by its ``provider_match``), its models, then
   its fallback providers' (Azure → OpenAI, …);
3. otherwise, or when the hinted provider has no such model: the models of users' price files
   (any provider), then the provider whose ``model_match`` accepts the name (``claude`` →
   Anthropic, ``gpt-``/``o3`` → OpenAI, ``gemini`` → Google), and its models.

Within a provider, models from a user's price file come before the snapshot's; a model whose
id or ``equals`` clause names the model exactly wins over pattern matches; then file order.
A name nothing matches is unpriced: its calls are flagged (``cost_source = 'unpriced'``), never
guessed. Resolutions are cached per (model, provider), so ingest pays a dict lookup per call.

Aliases come first: a name users aliased (``devlog prices alias aide-gpt-5 gpt-5``, or a price
file's ``aliases``) — whole, or without a ``provider/`` prefix — is priced as its target, the
target resolved by the rules above with the call's provider (aliases do not chain).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from app.pricing.cost import call_cost
from app.pricing.match import Matcher, compile_clause, exact_names, split_name
from app.pricing.price_file import PriceFile, parse_valid_from, price_fields, tier_dicts
from app.pricing.record import Price, PricedModel

REFRESH_SECONDS = 5.0  # how often a server checks whether prices were loaded
_CACHE_MAX = 20_000


@dataclass(slots=True)
class ProviderInfo:
    id: str
    name: str | None = None
    model_match: Matcher | None = None
    provider_match: Matcher | None = None
    fallback: list[str] = field(default_factory=list)
    rank: int = 0


@dataclass(slots=True)
class _Models:
    exact: dict[str, PricedModel]
    ordered: list[PricedModel]


class PriceBook:
    def __init__(self, providers: list[ProviderInfo], models: list[PricedModel],
                 aliases: dict[str, str] | None = None) -> None:
        known = {p.id for p in providers}
        extra = sorted({m.provider for m in models} - known)
        self.providers = sorted(providers, key=lambda p: p.rank) + [ProviderInfo(id=p, rank=10**6)
                                                                   for p in extra]
        self._by_id = {p.id: p for p in self.providers}
        self.models = models
        self._models: dict[str, _Models] = {}
        for m in sorted(models, key=lambda m: (m.shipped, m.rank)):
            group = self._models.setdefault(m.provider, _Models({}, []))
            group.ordered.append(m)
            for name in (m.model, *exact_names(m.match)):
                group.exact.setdefault(name, m)
        # models from users' price files, whatever their provider: found by name as well
        self._users = _Models({}, [])
        for m in sorted((m for m in models if not m.shipped), key=lambda m: m.rank):
            self._users.ordered.append(m)
            for name in (m.model, *exact_names(m.match)):
                self._users.exact.setdefault(name, m)
        self.aliases = {k.strip().lower(): v.strip().lower() for k, v in (aliases or {}).items()}
        self._cache: dict[tuple[str, str | None], PricedModel | None] = {}

    @classmethod
    def from_file(cls, data: PriceFile, *, shipped: bool = False) -> PriceBook:
        """A book of one validated price file, without the database (tests, tools)."""
        providers = [ProviderInfo(
            id=p.id.lower(), name=p.name, rank=i,
            model_match=compile_clause(p.model_match) if p.model_match else None,
            provider_match=compile_clause(p.provider_match) if p.provider_match else None,
            fallback=list(p.fallback)) for i, p in enumerate(data.providers)]
        models = []
        for rank, m in enumerate(data.models):
            models.append(PricedModel(
                provider=m.provider.lower(), model=m.model.lower(), name=m.name,
                match=m.match or {}, matcher=compile_clause(m.match), rank=rank, shipped=shipped,
                prices=[Price(valid_from=parse_valid_from(p.valid_from), prices=price_fields(p),
                              tiers=tuple(tier_dicts(p))) for p in m.prices]))
        return cls(providers, models, dict(data.aliases))

    def __len__(self) -> int:
        return len(self.models)

    # -- resolution ------------------------------------------------------------------------

    def resolve(self, model: str | None, provider: str | None = None) -> PricedModel | None:
        """The priced model an agent's ``model`` (and ``provider``) names, or None."""
        if not model:
            return None
        key = (model, provider)
        try:
            return self._cache[key]
        except KeyError:
            pass
        found = self._resolve(model, provider)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[key] = found
        return found

    def _resolve(self, model: str, provider: str | None) -> PricedModel | None:
        target = self.priced_as(model)
        if target is not None:
            return self._resolve_name(target, provider)
        return self._resolve_name(model, provider)

    def priced_as(self, model: str | None) -> str | None:
        """The name a user's alias prices ``model`` as, or None when no alias names it."""
        if not model or not self.aliases:
            return None
        whole = model.strip().lower()
        for n in (whole, *_names(model, None)):
            target = self.aliases.get(n)
            if target is not None:
                return target
        return None

    def resolve_plain(self, model: str | None, provider: str | None = None) -> PricedModel | None:
        """What ``model`` resolves to without aliases (checking a new alias's target)."""
        return self._resolve_name(model, provider) if model else None

    def _resolve_name(self, model: str, provider: str | None) -> PricedModel | None:
        names = _names(model, provider)
        hint = split_name(model, provider)[1]
        if hint:
            p = self._provider_for_hint(hint)
            if p is not None:
                for n in names:
                    found = self._in_provider(p, n, fallback=True)
                    if found is not None:
                        return found
        for n in names:
            found = self._users.exact.get(n) or next(
                (m for m in self._users.ordered if m.matcher(n)), None)
            if found is not None:
                return found
            for p in self.providers:
                if p.model_match is not None and p.model_match(n):
                    found = self._in_provider(p, n, fallback=False)
                    if found is not None:
                        return found
                    break
        return None

    def _provider_for_hint(self, hint: str) -> ProviderInfo | None:
        p = self._by_id.get(hint)
        if p is not None:
            return p
        for p in self.providers:
            if p.provider_match is not None and p.provider_match(hint):
                return p
        return None

    def _in_provider(self, p: ProviderInfo, name: str, *, fallback: bool) -> PricedModel | None:
        group = self._models.get(p.id)
        if group is not None:
            hit = group.exact.get(name)
            if hit is not None:
                return hit
            for m in group.ordered:
                if m.matcher(name):
                    return m
        if fallback:
            for other in p.fallback:
                q = self._by_id.get(other)
                if q is not None:
                    found = self._in_provider(q, name, fallback=False)
                    if found is not None:
                        return found
        return None

    # -- pricing ----------------------------------------------------------------------------

    def price(self, model: str | None, provider: str | None, ts: datetime) -> Price | None:
        m = self.resolve(model, provider)
        return None if m is None else m.price_at(ts)

    def cost(self, model: str | None, provider: str | None, ts: datetime,
             t_in: int | None = 0, t_out: int | None = 0, t_cr: int | None = 0,
             t_cw: int | None = 0, t_cw1h: int | None = None,
             t_re: int | None = 0) -> float | None:
        """USD for one call, or None when the model has no price at ``ts``."""
        price = self.price(model, provider, ts)
        if price is None:
            return None
        return call_cost(price, t_in, t_out, t_cr, t_cw, t_cw1h, t_re)


def _names(model: str, provider: str | None) -> list[str]:
    """The names ``model`` is looked up by: lower-cased (without a ``provider/`` prefix that is
    the provider hint), whole, then without each ``prefix/``."""
    name, _hint = split_name(model, provider)
    names = [model.strip().lower()] if name != model.strip().lower() else []
    names.insert(0, name)
    while "/" in names[-1]:
        names.append(names[-1].split("/", 1)[1])
    return names


EMPTY = PriceBook([], [])


@dataclass(slots=True)
class _Current:
    book: PriceBook = EMPTY
    version: tuple | None = None
    checked: float = float("-inf")
    lock: asyncio.Lock | None = None


_current = _Current()


async def current(conn: asyncpg.Connection) -> PriceBook:
    """This process's PriceBook: reloaded when the price tables changed, checked at most every
    ``REFRESH_SECONDS`` (one small query; nothing per event)."""
    if time.monotonic() - _current.checked < REFRESH_SECONDS:
        return _current.book
    from app.pricing import store

    if _current.lock is None:
        _current.lock = asyncio.Lock()
    if _current.lock.locked() and _current.version is not None:
        return _current.book  # another batch is re-checking: go on with the book we have
    async with _current.lock:  # the first load: concurrent batches wait for it
        if time.monotonic() - _current.checked < REFRESH_SECONDS:
            return _current.book
        try:
            version = await store.version(conn)
        except asyncpg.UndefinedTableError:  # a database not migrated to prices yet
            _current.checked = time.monotonic()
            return _current.book
        if version != _current.version:
            _current.book = await store.read_book(conn)
            _current.version = version
        _current.checked = time.monotonic()
    return _current.book


def cached() -> PriceBook:
    """The book this process loaded last (no query; EMPTY before the first ``current()``)."""
    return _current.book


def fresh() -> bool:
    """Whether ``current()`` would answer from memory."""
    return time.monotonic() - _current.checked < REFRESH_SECONDS


def invalidate() -> None:
    """Re-check at the next ``current()`` (after this process loaded prices)."""
    _current.checked = float("-inf")
