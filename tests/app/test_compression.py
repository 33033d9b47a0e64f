"""Answers are gzip-compressed for remote clients and sent as they are on loopback (where
compressing saves nothing and holds the event loop)."""

from __future__ import annotations

import gzip

import pytest
from litestar.config.compression import CompressionConfig

from app.http_compression import RemoteOnlyCompression

BODY = b'{"data": "' + b"x" * 10_000 + b'"}'


async def _answer(scope: dict, receive, send) -> None:  # noqa: ANN001
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": BODY, "more_body": False})


async def _call(client_host: str) -> tuple[dict, bytes]:
    middleware = RemoteOnlyCompression(_answer, CompressionConfig(backend="gzip", minimum_size=1024))
    scope = {"type": "http", "method": "POST", "path": "/graphql", "raw_path": b"/graphql",
             "headers": [(b"accept-encoding", b"gzip")], "client": (client_host, 40000),
             "query_string": b"", "app": None, "route_handler": None}
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    await middleware(scope, receive, send)
    headers = {k.decode().lower(): v.decode() for k, v in sent[0]["headers"]}
    return headers, b"".join(m.get("body", b"") for m in sent[1:])


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_loopback_clients_get_the_answer_as_it_is(host: str) -> None:
    headers, body = await _call(host)
    assert "content-encoding" not in headers and body == BODY


async def test_remote_clients_get_it_compressed() -> None:
    headers, body = await _call("192.0.2.7")
    assert headers["content-encoding"] == "gzip" and gzip.decompress(body) == BODY
