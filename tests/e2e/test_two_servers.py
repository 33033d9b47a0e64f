"""Two `devlog serve` processes on one database: a subscriber on one sees what is ingested
through the other (LISTEN/NOTIFY fan-out). The second listens beyond loopback, so it demands an
API key for ingest and reads."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import uuid

import httpx

from app.services import keys
from tests.app.test_live import next_payload, open_ws, subscribe
from tests.e2e.test_serve import _wait_ready
from tests.factories import INGEST, MACHINE, conversation
from tests.helpers import devlog_cmd, free_port, subprocess_env


def _serve(url: str, host: str, port: int) -> subprocess.Popen:
    env = subprocess_env(DEVLOG_DATABASE_URL=url, DEVLOG_LOG_LEVEL="warning")
    return subprocess.Popen(devlog_cmd("serve", "--host", host, "--port", str(port)), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def test_subscriber_on_one_process_sees_ingest_through_another(database_url: str, server: str) -> None:
    port_a, port_b = free_port(), free_port()
    record, secret = await keys.create(f"two-servers-{uuid.uuid4().hex[:6]}")
    procs = [_serve(database_url, "127.0.0.1", port_a), _serve(database_url, "0.0.0.0", port_b)]
    try:
        for proc, port in zip(procs, (port_a, port_b)):
            await asyncio.to_thread(_wait_ready, proc, f"http://127.0.0.1:{port}")
        a, b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
        native = f"two-{uuid.uuid4()}"
        ws = await open_ws(a)
        try:
            await subscribe(ws, "1", "subscription { sessionUpdated { nativeId eventCount } }")
            await subscribe(ws, "2", 'subscription { eventAdded(filter: {kinds: ["user_prompt"]}) { content } }')
            await asyncio.sleep(0.5)
            events = conversation(native, turns=2)
            batch = {"query": INGEST, "variables": {"batch": {"events": events, "machines": [MACHINE]}}}
            async with httpx.AsyncClient(base_url=b, timeout=30) as client:
                refused = (await client.post("/graphql", json=batch)).json()
                assert refused["data"] is None and "API key" in refused["errors"][0]["message"]
                reads = (await client.post("/graphql", json={"query": "{ projects { id } }"})).json()
                assert "API key" in reads["errors"][0]["message"]  # off loopback, reads need a key too
                health = (await client.post("/graphql", json={"query": "{ health { database } }"})).json()
                assert health == {"data": {"health": {"database": "ok"}}}
                ok = (await client.post("/graphql", json=batch,
                                        headers={"Authorization": f"Bearer {secret}"})).json()
                assert ok["data"]["ingestEvents"]["accepted"] == len(events)
            seen_session, prompts = None, []
            while seen_session is None or len(prompts) < 2:
                msg = await next_payload(ws)
                assert msg["type"] == "next", msg
                data = msg["payload"]["data"]
                if msg["id"] == "1" and data["sessionUpdated"]["nativeId"] == native:
                    seen_session = data["sessionUpdated"]
                elif msg["id"] == "2":
                    prompts.append(data["eventAdded"]["content"])
            assert seen_session == {"nativeId": native, "eventCount": len(events)}
            assert prompts == ["turn 0: please fix the bug", "turn 1: please fix the bug"]
        finally:
            await ws.close()
        # the WebSocket on the key-protected server takes the key in connection_init
        ws_b = await open_ws(b, params={"Authorization": f"Bearer {secret}"})
        try:
            await subscribe(ws_b, "h", "subscription { sessionUpdated { nativeId } }")
            await subscribe(ws_b, "x", "subscription { health { database } }")
            msg = await next_payload(ws_b)
            assert msg["id"] == "x" and msg["type"] == "next"
        finally:
            await ws_b.close()
    finally:
        await keys.revoke(record.name)
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    assert [p.returncode for p in procs] == [0, 0], [p.stderr.read()[-2000:] for p in procs]
