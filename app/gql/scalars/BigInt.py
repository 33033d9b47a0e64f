"""``BigInt``: a 64-bit integer (token totals outgrow GraphQL's 32-bit Int), sent as a JSON number."""

from __future__ import annotations

from typing import NewType

import strawberry

BigInt = NewType("BigInt", int)


def _parse(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError("BigInt must be an integer")
    return int(value)


BigIntDefinition = strawberry.scalar(
    name="BigInt",
    description="A 64-bit integer, sent as a JSON number.",
    serialize=int,
    parse_value=_parse,
)
