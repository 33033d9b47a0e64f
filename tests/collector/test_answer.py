"""How the sender reads the server's answer: which failures are retried whole, split for size,
or bisected to find a bad event."""

from __future__ import annotations

import json

import pytest

from collector.answer import Answer, DeliveryError, read_answer

URL = "http://server/graphql"


def errors(*messages: str, code: str | None = None) -> bytes:
    items = [{"message": m, **({"extensions": {"code": code}} if code else {})} for m in messages]
    return json.dumps({"data": None, "errors": items}).encode()


def test_an_answer_with_data_is_the_result() -> None:
    body = json.dumps({"data": {"ingestEvents": {"accepted": 2, "duplicates": 1, "rejected": [
        {"index": 0, "id": None, "reason": "bad"}]}}}).encode()
    assert read_answer(URL, 200, body) == Answer(accepted=2, duplicates=1, rejected=[
        {"index": 0, "id": None, "reason": "bad"}])


@pytest.mark.parametrize(("status", "body", "kind"), [
    (200, errors('invalid byte sequence for encoding "UTF8": 0x00'), "batch"),
    (200, errors("value too long for type character varying(1024)"), "batch"),
    (500, b'{"status_code":500,"detail":"Internal Server Error"}', "batch"),
    (500, b"Internal Server Error", "batch"),
    (400, errors("Variable '$batch' got invalid value"), "batch"),
    (200, errors("database unavailable, nothing was stored (connection refused); retry"), "retry"),
    (200, errors("canceling statement due to statement timeout"), "retry"),
    (200, errors("the database is busy", code="UNAVAILABLE"), "retry"),
    (503, b"Service Unavailable", "retry"),
    (502, b"<html>Bad Gateway</html>", "retry"),
    (429, b"", "retry"),
    (404, b"<html>Not Found</html>", "retry"),
    (413, b"", "too_large"),
    (200, errors("batch has 6000 events; the limit is 5000 (DEVLOG_MAX_BATCH_EVENTS): split it"),
     "too_large"),
    (401, b"", "auth"),
    (200, errors("ingest needs an API key: send 'Authorization: Bearer <key>'"), "auth"),
])
def test_failures_by_cause(status: int, body: bytes, kind: str) -> None:
    with pytest.raises(DeliveryError) as caught:
        read_answer(URL, status, body)
    exc = caught.value
    assert (exc.batch, exc.too_large, not exc.retry) == (kind == "batch", kind == "too_large",
                                                          kind == "auth")
    assert str(exc).startswith(URL)
    if kind == "batch" and status == 200:
        assert exc.reason == json.loads(body)["errors"][0]["message"]  # kept with the dead letter
