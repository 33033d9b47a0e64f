"""Redaction before anything leaves the machine.

Agent logs hold whatever went through the terminal: API keys pasted into prompts, tokens in
``curl`` commands, ``.env`` files read by a tool. Known secret shapes are replaced by
``[REDACTED:<kind>]`` in every text field and in the raw payload (strings at any depth).
``metadata_only`` goes further and sends no content at all: kinds, times, models, tokens, tool
names, statuses, file paths and line counts only.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from collector.wire import Event

# (kind, literal hints, pattern). A pattern runs only on text containing one of its hints (a
# plain substring test, much cheaper than a regex scan); patterns match the secret itself, or
# group "s" when only part of the match is secret.
PATTERNS: list[tuple[str, tuple[str, ...], re.Pattern[str]]] = [
    ("private-key", ("PRIVATE KEY",), re.compile(
        r"-----BEGIN (?:[A-Z0-9 ]+ )?PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
        r"(?:-----END (?:[A-Z0-9 ]+ )?PRIVATE KEY(?: BLOCK)?-----|$)")),
    ("anthropic-key", ("sk-ant-",), re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{20,}")),
    ("openai-key", ("sk-",), re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}")),
    ("github-token", ("gh", "github_pat_"),
     re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})")),
    ("gitlab-token", ("glpat-",), re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}")),
    ("aws-access-key", ("AKIA", "ASIA"), re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")),
    ("google-api-key", ("AIza",), re.compile(r"\bAIza[0-9A-Za-z_\-]{35}")),
    ("slack-token", ("xox",), re.compile(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}")),
    ("stripe-key", ("_live_", "_test_"), re.compile(r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{20,}")),
    ("jwt", ("eyJ",), re.compile(r"\beyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}")),
    ("devlog-key", ("dlk_",), re.compile(r"\bdlk_[A-Za-z0-9_\-]{20,}")),
    # user:password@ in URLs (the password only)
    ("url-password", ("://",), re.compile(r"://[^\s:/@\[\]]+:(?P<s>[^\s@/\[\]]+)@")),
    # Authorization: Bearer xxx / Basic xxx
    ("auth-header", ("bearer ", "basic "),
     re.compile(r"(?i)\b(?:bearer|basic) (?P<s>[A-Za-z0-9_\-.~+/=]{16,})")),
    # KEY=value / "password": "value" for names that say secret (the name may have a prefix,
    # DB_PASSWORD=…, which need not be matched: only the value is replaced)
    ("secret-assignment", ("pass", "secret", "token", "key", "credential"), re.compile(
        r"(?i)(?:password|passwd|secret|token|api[_\-]?key|access[_\-]?key|private[_\-]?key"
        r"|credential)[A-Za-z0-9_\-]*[\"']?\s*[:=]\s*[\"']?"
        r"(?!\[REDACTED)(?P<s>[^\s\"',;]{6,})")),
]


_CASELESS = {"auth-header", "secret-assignment"}


def redact_text(text: str) -> str:
    lowered = None
    for kind, hints, pattern in PATTERNS:
        haystack = text
        if kind in _CASELESS:
            haystack = lowered = lowered if lowered is not None else text.lower()
        if not any(h in haystack for h in hints):
            continue
        if "s" in pattern.groupindex:
            text = pattern.sub(lambda m, k=kind: m.group(0)[: m.start("s") - m.start(0)]
                               + f"[REDACTED:{k}]" + m.group(0)[m.end("s") - m.start(0):], text)
        else:
            text = pattern.sub(f"[REDACTED:{kind}]", text)
    return text


def redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    return value


_TEXT_FIELDS = ("content", "command", "error")


def prepare(event: Event, *, redact: bool, metadata_only: bool) -> Event:
    """The event as it may leave the machine."""
    if metadata_only:
        return msgspec.structs.replace(event, content=None, command=None,
                                       error="(content not sent)" if event.error else None,
                                       payload=None)
    if not redact:
        return event
    changes: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        value = getattr(event, name)
        if value:
            new = redact_text(value)
            if new != value:
                changes[name] = new
    if event.payload is not None:
        changes["payload"] = redact_value(event.payload)
    return msgspec.structs.replace(event, **changes) if changes else event
