"""The GraphQL API, probes and GraphiQL over real HTTP and a real WebSocket."""

from __future__ import annotations

import json
import uuid

import httpx
import websockets

from app.db.tables import Machine, Project
from tests.helpers import gql


async def test_health_query_reports_database_and_storage(client: httpx.AsyncClient) -> None:
    body = await gql(client, "{ health { version database databaseVersion embedded storage timescale } }")
    health = body["data"]["health"]
    assert health["database"] == "ok"
    assert health["embedded"] is False
    assert health["storage"] in {"postgresql", "timescaledb"}
    assert (health["timescale"] is None) == (health["storage"] == "postgresql")
    assert health["databaseVersion"]


async def test_projects_and_machines_come_from_the_database(client: httpx.AsyncClient) -> None:
    pid, mid = uuid.uuid4(), uuid.uuid4()
    await Project.insert(Project(id=pid, key=f"github.com/acme/{pid}", name="acme")).run()
    await Machine.insert(Machine(id=mid, key=f"m-{mid}", hostname="box", kind="local")).run()
    body = await gql(client, "{ projects { id key name } machines { id hostname kind } }")
    assert {"id": str(pid), "key": f"github.com/acme/{pid}", "name": "acme"} in body["data"]["projects"]
    assert {"id": str(mid), "hostname": "box", "kind": "local"} in body["data"]["machines"]


async def test_invalid_query_is_a_graphql_error_not_a_crash(client: httpx.AsyncClient) -> None:
    body = await gql(client, "{ health { nope } }")
    assert "Cannot query field 'nope'" in body["errors"][0]["message"]
    bad = await client.post("/graphql", content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 400
    not_utf8 = await client.post("/graphql", content=b'{"query": "\x80"}',
                                 headers={"content-type": "application/json"})
    assert not_utf8.status_code == 400


async def test_probes(client: httpx.AsyncClient) -> None:
    healthz = await client.get("/healthz")
    assert healthz.status_code == 200 and healthz.json()["status"] == "ok"
    readyz = await client.get("/readyz")
    assert readyz.status_code == 200 and readyz.json()["database"] == "ok"


async def test_graphiql_is_served_without_cdn(client: httpx.AsyncClient) -> None:
    page = await client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    html = page.text
    assert "unpkg.com" not in html and "cdn" not in html.lower() and "<script>" not in html
    for asset in ("/static/vendor/graphiql/graphiql.min.js", "/static/vendor/graphiql/graphiql.min.css",
                  "/static/vendor/graphiql/react.production.min.js",
                  "/static/vendor/graphiql/react-dom.production.min.js", "/static/js/graphiql-init.js"):
        assert asset in html
        response = await client.get(asset, headers={"accept-encoding": "gzip"})
        assert response.status_code == 200, asset


async def test_subscription_over_graphql_transport_ws(server: str) -> None:
    url = server.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:
        assert ws.subprotocol == "graphql-transport-ws"
        await ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
            "query": "subscription { health(everySeconds: 1) { database storage } }"}}))
        for expected in range(2):  # the first answer at once, the second a second later
            message = json.loads(await ws.recv())
            while message["type"] == "ping":
                await ws.send(json.dumps({"type": "pong"}))
                message = json.loads(await ws.recv())
            assert message["type"] == "next", message
            assert message["payload"]["data"]["health"]["database"] == "ok"
        await ws.send(json.dumps({"id": "1", "type": "complete"}))
