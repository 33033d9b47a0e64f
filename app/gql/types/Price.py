from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from app.services.prices import AliasRecord, PriceRecord


@strawberry.type(description=(
    "One dated price of one model, USD per million tokens. A call is priced with the price "
    "valid at its timestamp; buckets without a price of their own cost the input price "
    "(cache reads and writes) or are part of output (reasoning)."))
class Price:
    provider: str = strawberry.field(description="Provider id: anthropic, openai, google, …")
    model: str = strawberry.field(description="The priced model's id, e.g. claude-sonnet-4-5.")
    name: str | None = strawberry.field(description="Display name.")
    match: str = strawberry.field(description=(
        "The model names it prices, readable: `claude-sonnet-4-5*` prefix, `/…/` regex, "
        "alternatives separated by `|`."))
    valid_from: datetime | None = strawberry.field(description="Valid from (null: always).")
    valid_to: datetime | None = strawberry.field(description="Valid until (null: still valid).")
    input: float | None = strawberry.field(description="Input tokens (cache excluded).")
    output: float | None = strawberry.field(description="Output tokens (reasoning included).")
    cache_read: float | None = strawberry.field(description="Cache reads.")
    cache_write: float | None = strawberry.field(description="Cache writes (5 minutes).")
    cache_write_1h: float | None = strawberry.field(description="Cache writes of 1 hour.")
    reasoning: float | None = strawberry.field(description=(
        "Reasoning tokens, when the model prices them apart from output."))
    tiers: JSON = strawberry.field(description=(
        'Long-context tiers: [{"above": prompt tokens, "input": …, "output": …}]; a tier '
        "prices the whole call once its prompt (input + cache) is above the threshold."))
    source: str = strawberry.field(description="genai-prices <version>, or the file it came from.")
    loaded_at: datetime = strawberry.field(description="When it was loaded.")

    @classmethod
    def from_record(cls, r: PriceRecord) -> Price:
        return cls(provider=r.provider, model=r.model, name=r.name, match=r.match,
                   valid_from=r.valid_from, valid_to=r.valid_to, input=r.input, output=r.output,
                   cache_read=r.cache_read, cache_write=r.cache_write_5m
                   if r.cache_write_5m is not None else r.cache_write,
                   cache_write_1h=r.cache_write_1h, reasoning=r.reasoning, tiers=r.tiers,
                   source=r.source, loaded_at=r.loaded_at)


@strawberry.type(description=(
    "A user's price alias: LLM calls of model `name` are priced as `model` "
    "(`devlog prices alias NAME MODEL`, or a price file's `aliases`)."))
class PriceAlias:
    name: str = strawberry.field(description="The model name as agents report it (lower-cased).")
    model: str = strawberry.field(description="The model name it is priced as.")
    resolves_to: str | None = strawberry.field(description=(
        "`provider/model` of the price used for it today; null when `model` has no price any "
        "more (its calls are then unpriced)."))
    source: str = strawberry.field(description="`devlog prices alias`, or the price file.")
    loaded_at: datetime = strawberry.field(description="When it was set.")

    @classmethod
    def from_record(cls, r: AliasRecord) -> PriceAlias:
        return cls(name=r.name, model=r.model, resolves_to=r.resolves_to, source=r.source,
                   loaded_at=r.loaded_at)
