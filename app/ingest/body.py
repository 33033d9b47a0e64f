"""Decode a GraphQL request body (the controller's JSON codec), so that one event's odd value
never costs the whole ingest batch.

In order:

1. :func:`app.ingest.bounds.repair_json`: ``\\u0000`` and lone-surrogate escapes become
   ``\\ufffd`` (one search when there are none);
2. the typed decode of an ``ingestEvents`` body (``app.ingest.batch.decode_request``), which
   succeeds when every event is valid: the fast path;
3. msgspec's plain JSON decode (the batch's events are then validated one by one);
4. only for a body declaring an ``EventBatch`` that msgspec cannot read: a tolerant decode
   with the standard library — invalid UTF-8 replaced by U+FFFD, raw control characters and
   NUL in strings accepted (NUL cleaned), and numbers no double holds (``NaN``, ``Infinity``,
   ``1e400``, huge integers) kept as :class:`~app.ingest.bounds.UnreadableNumber`, which
   rejects the event holding it. A body nested too deep for any decoder (``RecursionError``)
   first has every value nested deeper than ``_CUT_DEPTH`` replaced by ``null``: what
   remains is still deeper than a payload may be, so its event is rejected with that reason.

Anything else that is not JSON is an HTTP 400 (``json.JSONDecodeError``), as before.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import msgspec

from app.ingest.batch import decode_request
from app.ingest.bounds import MAX_PAYLOAD_DEPTH, UnreadableNumber, repair_json

# Values deeper than this in the body are cut: an event's payload sits 5 levels down (request,
# variables, batch, events, event), so what is left of a cut payload is still too deep.
_CUT_DEPTH = MAX_PAYLOAD_DEPTH + 30
_MAX_INT_DIGITS = 4000  # below Python's int/str conversion limit (4300)


def decode(data: str | bytes) -> object:
    """The request as Python values (or with a typed batch); json.JSONDecodeError if the body
    is not JSON."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    request = decode_request(data)
    if request is not None:
        return request
    data = repair_json(data)
    try:
        return msgspec.json.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
        if b"EventBatch" not in data:
            raise _not_json(exc) from None
        return _tolerant(data)


def _not_json(exc: BaseException) -> json.JSONDecodeError:
    message = "JSON nested too deeply" if isinstance(exc, RecursionError) else str(exc)
    return json.JSONDecodeError(message, "", 0)


def _float(text: str) -> float | UnreadableNumber:
    value = float(text)
    return value if math.isfinite(value) else UnreadableNumber(text)


def _int(text: str) -> int | UnreadableNumber:
    digits = len(text) - text.startswith("-")
    return int(text) if digits <= _MAX_INT_DIGITS else UnreadableNumber(text)


def _loads(text: str) -> Any:
    return json.loads(text, strict=False, parse_float=_float, parse_int=_int,
                      parse_constant=UnreadableNumber)


def _tolerant(data: bytes) -> Any:
    text = data.decode("utf-8", "replace")
    if "\x00" in text:  # raw NUL characters inside strings (strict=False lets them through)
        text = text.replace("\x00", "\ufffd")
    try:
        try:
            return _loads(text)
        except RecursionError:
            return _loads(_cut_deep(text, _CUT_DEPTH))
    except (ValueError, RecursionError) as exc:
        raise _not_json(exc) from None


# A JSON string (so brackets inside strings are skipped) or a bracket.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def _cut_deep(text: str, limit: int) -> str:
    """``text`` with every array or object opened deeper than ``limit`` replaced by ``null``
    (scanned without recursion). Brackets are not matched by kind: a body that is not JSON
    stays not JSON and fails to decode afterwards."""
    out: list[str] = []
    depth = 0
    kept = 0  # text before this offset is copied to out already
    cut_at = -1
    for match in _TOKEN.finditer(text):
        char = text[match.start()]
        if char == '"':
            continue
        if char in "[{":
            depth += 1
            if depth == limit + 1:
                cut_at = match.start()
        else:
            if depth == limit + 1 and cut_at >= 0:
                out.append(text[kept:cut_at])
                out.append("null")
                kept = match.end()
                cut_at = -1
            depth -= 1
    out.append(text[kept:])
    return "".join(out)
