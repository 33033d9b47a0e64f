"""Small shared GraphQL types: token buckets and Relay page info."""

from __future__ import annotations

import strawberry

from app.gql.scalars.BigInt import BigInt


@strawberry.type(description=(
    "Token buckets, kept separate. `input` excludes cache reads and writes: total prompt "
    "tokens = input + cacheRead + cacheWrite."))
class TokenBuckets:
    input: BigInt
    output: BigInt
    cache_read: BigInt
    cache_write: BigInt
    reasoning: BigInt

    @strawberry.field(description="input + output + cacheRead + cacheWrite.")
    def total(self) -> BigInt:
        return BigInt(self.input + self.output + self.cache_read + self.cache_write)


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None
