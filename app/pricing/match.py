"""Match clauses of price files, and the normalisation of model names before matching.

A clause is a JSON object with one key: ``equals``, ``starts_with``, ``ends_with``,
``contains`` (case-insensitive, on the lower-cased name), ``regex`` (``re.search`` on the
lower-cased name), or ``or`` / ``and`` with a list of clauses — the clauses of genai-prices.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Matcher = Callable[[str], bool]

_LEAVES = ("equals", "starts_with", "ends_with", "contains", "regex")


class ClauseError(ValueError):
    """A clause that is not one of the known forms."""


def compile_clause(clause: Any) -> Matcher:
    """A predicate on a lower-cased model name; raises ClauseError on a malformed clause."""
    if not isinstance(clause, dict) or len(clause) != 1:
        raise ClauseError(f"a match clause is an object with one key, not {clause!r}")
    (key, value), = clause.items()
    if key in ("or", "and"):
        if not isinstance(value, list) or not value:
            raise ClauseError(f"{key!r} takes a non-empty list of clauses")
        parts = [compile_clause(v) for v in value]
        if key == "or":
            return lambda name: any(p(name) for p in parts)
        return lambda name: all(p(name) for p in parts)
    if key not in _LEAVES:
        raise ClauseError(f"unknown match clause {key!r} (use one of {', '.join(_LEAVES)}, or, and)")
    if not isinstance(value, str) or not value:
        raise ClauseError(f"{key!r} takes a non-empty string")
    if key == "regex":
        try:
            pattern = re.compile(value)
        except re.error as exc:
            raise ClauseError(f"bad regex {value!r}: {exc}") from None
        return lambda name: pattern.search(name) is not None
    text = value.lower()
    if key == "equals":
        return lambda name: name == text
    if key == "starts_with":
        return lambda name: name.startswith(text)
    if key == "ends_with":
        return lambda name: name.endswith(text)
    return lambda name: text in name


def exact_names(clause: Any) -> list[str]:
    """The names a clause accepts by equality (its ``equals`` leaves under ``or``)."""
    if not isinstance(clause, dict) or len(clause) != 1:
        return []
    (key, value), = clause.items()
    if key == "equals" and isinstance(value, str):
        return [value.lower()]
    if key == "or" and isinstance(value, list):
        return [n for v in value for n in exact_names(v)]
    return []


def describe(clause: Any) -> str:
    """A one-line human reading of a clause: ``= gpt-5 | gpt-5-codex | claude-sonnet-4-5*``."""
    (key, value), = clause.items()
    if key == "or":
        return " | ".join(describe(v) for v in value)
    if key == "and":
        return " & ".join(f"({describe(v)})" for v in value)
    return {"equals": "{}", "starts_with": "{}*", "ends_with": "*{}", "contains": "*{}*",
            "regex": "/{}/"}[key].format(value)


def default_clause(model: str) -> dict:
    """For a price-file model given without ``match``: its id, optionally with a date suffix
    (``-20250929`` or ``-2025-09-29``)."""
    return {"or": [{"equals": model.lower()},
                   {"regex": "^" + re.escape(model.lower()) + r"-(\d{8}|\d{4}-\d{2}-\d{2})$"}]}


def split_name(model: str, provider: str | None) -> tuple[str, str | None]:
    """Lower-case and trim a model name; a ``provider/model`` prefix becomes the provider hint
    (``anthropic/claude-sonnet-4-5``, ``openai/gpt-5``; the agent's own provider wins). Only
    the first segment is taken off: ``openrouter/anthropic/claude-…`` keeps ``anthropic/…``,
    which the full name is tried with as well."""
    name = model.strip().lower()
    hint = provider.strip().lower() if provider else None
    if "/" in name and not name.startswith("@"):
        head, rest = name.split("/", 1)
        if head and rest:
            return rest, hint or head
    return name, hint
