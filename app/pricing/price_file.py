"""The price-file format: the shipped ``snapshot.json`` and files for ``devlog prices load``.

    {"source": "our negotiated prices",                 (optional: default "file <name>")
     "providers": [{"id": "anthropic", "model_match": {"contains": "claude"}}],   (optional)
     "models": [
       {"provider": "anthropic", "model": "claude-sonnet-4-5", "name": "Claude Sonnet 4.5",
        "match": {"or": [{"starts_with": "claude-sonnet-4-5"}, {"equals": "sonnet"}]},
        "prices": [
          {"valid_from": null, "input": 3, "output": 15, "cache_read": 0.3,
           "cache_write": 3.75, "cache_write_1h": 6,
           "tiers": [{"above": 200000, "input": 6, "output": 22.5}]},
          {"valid_from": "2026-12-01", "input": 2.5, "output": 12}]}],
     "aliases": {"aide-gpt-5": "gpt-5"}}                 (optional)

Prices are USD per million tokens; ``valid_from`` is a date (UTC midnight) or an ISO date-time,
``null`` for "since always". ``match`` (clauses: ``app.pricing.match``) may be left out: the
model id, optionally with a date suffix. A model's provider need not be listed in
``providers`` (then it is known by its id only, as in ``provider/model`` names). ``aliases``
price a model name nobody lists as another (its target: a name as agents report it, resolved as
theirs are; not another alias); a file may hold only aliases.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Any

import msgspec

from app.errors import DevlogError
from app.pricing.match import ClauseError, compile_clause, default_clause

SNAPSHOT = Path(__file__).with_name("snapshot.json")

Rate = Annotated[float, msgspec.Meta(ge=0)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class PriceFileError(DevlogError):
    """A price file that cannot be read or is not valid."""


class TierEntry(msgspec.Struct, forbid_unknown_fields=True):
    above: Annotated[int, msgspec.Meta(ge=0)]
    input: Rate | None = None
    output: Rate | None = None
    cache_read: Rate | None = None
    cache_write: Rate | None = None
    cache_write_5m: Rate | None = None
    cache_write_1h: Rate | None = None
    reasoning: Rate | None = None


class PriceEntry(msgspec.Struct, forbid_unknown_fields=True):
    valid_from: str | None = None
    input: Rate | None = None
    output: Rate | None = None
    cache_read: Rate | None = None
    cache_write: Rate | None = None
    cache_write_5m: Rate | None = None
    cache_write_1h: Rate | None = None
    reasoning: Rate | None = None
    tiers: list[TierEntry] = []


class ModelEntry(msgspec.Struct, forbid_unknown_fields=True):
    provider: Name
    model: Name
    prices: list[PriceEntry]
    name: str | None = None
    match: dict[str, Any] | None = None


class ProviderEntry(msgspec.Struct, forbid_unknown_fields=True):
    id: Name
    name: str | None = None
    model_match: dict[str, Any] | None = None
    provider_match: dict[str, Any] | None = None
    fallback: list[str] = []


class PriceFile(msgspec.Struct):
    models: list[ModelEntry] = []
    providers: list[ProviderEntry] = []
    aliases: dict[Name, Name] = {}
    source: str | None = None
    notice: str | None = None
    format: str | None = None
    generated: str | None = None


def parse_valid_from(text: str | None) -> datetime | None:
    """``2026-12-01`` (UTC midnight) or an ISO date-time (UTC when it has no offset)."""
    if text is None:
        return None
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), UTC)
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"valid_from {text!r} is not a date (YYYY-MM-DD) or an ISO date-time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def read(path: Path | str, *, data: bytes | None = None) -> PriceFile:
    """Read and validate a price file; PriceFileError names the file and the first problem."""
    path = Path(path)
    where = f"price file {path}"
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise PriceFileError(f"cannot read {where}: {exc.strerror or exc}") from None
    try:
        parsed = msgspec.json.decode(data, type=PriceFile)
    except msgspec.ValidationError as exc:  # a subclass of DecodeError: first
        raise PriceFileError(f"{where}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise PriceFileError(f"{where}: not valid JSON ({exc})") from None
    if not parsed.models and not parsed.aliases:
        raise PriceFileError(f"{where}: no models and no aliases")
    aliases = {}
    for name, target in parsed.aliases.items():
        error = alias_error(name, target)
        if error is None and target.strip().lower() in {n.strip().lower() for n in parsed.aliases}:
            error = f"{target!r} is itself an alias: alias {name!r} to what that one names"
        if error is not None:
            raise PriceFileError(f"{where}: aliases[{name!r}]: {error}")
        aliases[name.strip().lower()] = target.strip().lower()
    parsed.aliases = aliases
    seen: set[tuple[str, str]] = set()
    for i, m in enumerate(parsed.models):
        at = f"{where}: models[{i}] ({m.provider}/{m.model})"
        key = (m.provider.lower(), m.model.lower())
        if key in seen:
            raise PriceFileError(f"{at}: listed twice")
        seen.add(key)
        if m.match is None:
            m.match = default_clause(m.model)
        try:
            compile_clause(m.match)
        except ClauseError as exc:
            raise PriceFileError(f"{at}.match: {exc}") from None
        if not m.prices:
            raise PriceFileError(f"{at}: no prices")
        starts = set()
        for j, p in enumerate(m.prices):
            try:
                start = parse_valid_from(p.valid_from)
            except ValueError as exc:
                raise PriceFileError(f"{at}.prices[{j}]: {exc}") from None
            if start in starts:
                raise PriceFileError(f"{at}.prices[{j}]: two prices valid from {p.valid_from}")
            starts.add(start)
            if p.input is None and p.output is None:
                raise PriceFileError(f"{at}.prices[{j}]: needs at least an input or output price")
    for i, p in enumerate(parsed.providers):
        for field in ("model_match", "provider_match"):
            clause = getattr(p, field)
            if clause is not None:
                try:
                    compile_clause(clause)
                except ClauseError as exc:
                    raise PriceFileError(f"{where}: providers[{i}].{field}: {exc}") from None
    if parsed.source is None:
        parsed.source = f"file {path.name}"
    return parsed


def alias_error(name: str, target: str) -> str | None:
    """Why ``name`` cannot be an alias of ``target`` (shape only), or None."""
    name, target = name.strip().lower(), target.strip().lower()
    if not name or not target:
        return "an alias and its model must not be empty"
    if len(name) > 128 or len(target) > 128:
        return "model names are at most 128 characters"
    if name == target:
        return "a name cannot be an alias of itself"
    return None


def price_fields(p: PriceEntry | TierEntry) -> dict[str, float]:
    return {k: v for k in ("input", "output", "cache_read", "cache_write", "cache_write_5m",
                           "cache_write_1h", "reasoning") if (v := getattr(p, k)) is not None}


def tier_dicts(p: PriceEntry) -> list[dict[str, Any]]:
    return [{"above": t.above, **price_fields(t)} for t in p.tiers]
