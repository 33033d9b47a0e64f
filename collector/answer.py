"""What the server's answer to an ``ingestEvents`` request means for the batch (the sender acts
on it: ``collector.sender``)."""

from __future__ import annotations

from typing import Any

import msgspec

# Words of a GraphQL error that mean "not now" rather than "not this batch".
TRANSIENT_WORDS = ("unavailable", "timed out", "timeout", "try again", "retry", "too many clients",
                   "shutting down")
TRANSIENT_CODES = {"UNAVAILABLE", "SERVICE_UNAVAILABLE", "TIMEOUT", "RETRY"}


class Answer(msgspec.Struct):
    accepted: int
    duplicates: int
    rejected: list[dict[str, Any]]


class DeliveryError(Exception):
    """No answer for a batch. ``retry``: worth retrying soon (not an auth error);
    ``too_large``: split it for its size; ``batch``: the server failed the batch as a whole for
    something that may be in it (bisect it); ``reason``: the server's own words."""

    def __init__(self, message: str, *, retry: bool = True, too_large: bool = False,
                 batch: bool = False, reason: str | None = None) -> None:
        super().__init__(message)
        self.retry = retry
        self.too_large = too_large
        self.batch = batch
        self.reason = reason or message


def read_answer(url: str, status: int, body: bytes) -> Answer:
    """The server committed the batch (an :class:`Answer`), or why not (:class:`DeliveryError`):

    - 413, or the server's batch limit: ``too_large``;
    - 408, 429, 502–504, or a GraphQL error saying the server cannot take anything now: retry;
    - 401/403, or a GraphQL error about the API key: retry slowly (``retry=False``);
    - no GraphQL response at all (a wrong URL, a proxy's page): retry, saying so;
    - any other GraphQL error without data, or an HTTP 500: ``batch``.
    """
    if status == 413:
        raise DeliveryError(f"{url} answered 413: batch too large", too_large=True)
    if status in (408, 429) or status > 500:
        raise DeliveryError(f"{url} answered HTTP {status}")
    if status in (401, 403):
        raise DeliveryError(f"{url} answered HTTP {status}: check the API key (api_key)",
                            retry=False)
    try:
        doc = msgspec.json.decode(body)
    except ValueError:  # msgspec.DecodeError, or UnicodeDecodeError on bad UTF-8
        doc = None
    data = (doc.get("data") or {}).get("ingestEvents") if isinstance(doc, dict) else None
    if data is not None:
        return msgspec.convert(data, Answer)
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errors, list) and status != 500:
        raise DeliveryError(f"{url} answered HTTP {status} with no GraphQL response "
                            f"(is server_url the /graphql endpoint?)")
    errors = [e for e in errors or [] if isinstance(e, dict)]
    message = "; ".join(str(e.get("message")) for e in errors) or f"HTTP {status}"
    if "API key" in message:
        raise DeliveryError(f"{url}: {message}", retry=False)
    if "DEVLOG_MAX_BATCH_EVENTS" in message:  # the server's batch limit: split it
        raise DeliveryError(f"{url}: {message}", too_large=True, reason=message)
    if _transient(message, errors):
        raise DeliveryError(f"{url}: {message}")
    raise DeliveryError(f"{url}: {message}", batch=True, reason=message)


def _transient(message: str, errors: list[dict[str, Any]]) -> bool:
    """A GraphQL error that says the server cannot take anything now (its database is away,
    a timeout), as opposed to one about this batch."""
    text = message.lower()
    if any(word in text for word in TRANSIENT_WORDS):
        return True
    codes = {str(e["extensions"].get("code", "")).upper() for e in errors
             if isinstance(e.get("extensions"), dict)}
    return bool(codes & TRANSIENT_CODES)
