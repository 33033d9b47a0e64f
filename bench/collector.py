"""The collector: parse throughput per agent, devlog vs ccusage, a full backfill, the idle cost.

Generated logs live in a temp dir (removed at the end unless ``--keep``), laid out under a fake
HOME the way the agents lay them out: Claude Code transcripts (``tests/agent_logs.claude_session``,
re-encoded compactly like Claude Code's ``JSON.stringify``, three models, 40 projects, 30 days),
Codex rollouts and Copilot chat sessions (generated here, see :func:`codex_rollout` and
:func:`copilot_session`).

    ./dev bench collector parse [--mb 200]            MB and events per second of parse_file
                                                      and of Reader.scan into a SQLite outbox,
                                                      per agent (--mb of logs per agent)
    ./dev bench collector ccusage [--mb 100]          `devlog collect backfill --dry-run` vs
                                                      `ccusage daily --json` on the same files:
                                                      wall time, and token totals by day and model
                                                      against what the generator wrote
    ./dev bench collector backfill [--gb 1.0]         `devlog collect backfill` into a real
                                                      `devlog serve`: events/s end to end, peak
                                                      RSS, and the server's count checked
    ./dev bench collector idle [--files 500 --seconds 60]
                                                      live `devlog collect` once it has caught up
                                                      and nothing changes: RSS and CPU

ccusage is installed once into bench/.cache (npm). The server runs on a throw-away database
``devlog_bench_collector_<random>`` on $DEVLOG_BENCH_ADMIN_URL (default: the local PostgreSQL),
dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg
import msgspec

from bench._common import free_port, scratch_database, stop, table, wait_ready
from collector.adapters.base import Adapter
from tests.agent_logs import claude_session, expected_claude

MB = 1_000_000
START = datetime(2026, 10, 1, tzinfo=UTC)  # generated history: 30 days from here
DAYS = 30
CACHE = ROOT / "bench" / ".cache"
CCUSAGE = CACHE / "node_modules" / ".bin" / "ccusage"
# ccusage 20 is a native binary per platform; when @latest has no binary for this platform yet
# (20.0.26 on linux-x64, November 2026), this one is installed instead.
CCUSAGE_FALLBACK = "20.0.24"
COPILOT_FIXTURE = (ROOT / "tests/fixtures/agent-logs/copilot/synthetic/workspaceStorage/ws-synth"
                   / "chatSessions/bef5721e-62ab-4792-9138-52601b13f430.json")
AGENTS = ("claude-code", "codex", "copilot")
BUCKETS = ("input", "output", "cache_read", "cache_write", "reasoning")

_dec = msgspec.json.Decoder()
_enc = msgspec.json.Encoder()


def facts() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


def say(text: str) -> None:
    print(f"  {text}", file=sys.stderr, flush=True)


# -- generated logs ----------------------------------------------------------------------------


@dataclass
class Generated:
    agent: str
    files: list[Path] = field(default_factory=list)
    bytes: int = 0
    sessions: int = 0
    expected: Counter = field(default_factory=Counter)  # events by kind (Claude Code only)
    truth: dict = field(default_factory=lambda: defaultdict(Counter))  # (day, model) -> buckets
    seconds: float = 0.0

    def add(self, path: Path, data: bytes, end: datetime) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (end.timestamp(), end.timestamp()))  # history: last written when it ended
        self.files.append(path)
        self.bytes += len(data)
        self.sessions += 1


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def compact(data: bytes) -> bytes:
    """JSON lines re-encoded without spaces, as the agents write them (JSON.stringify)."""
    return b"".join(_enc.encode(_dec.decode(line)) + b"\n" for line in data.splitlines() if line)


CLAUDE_DEFAULT = "claude-sonnet-4-5-20250929"  # what tests/agent_logs.py writes
CLAUDE_MODELS = ((CLAUDE_DEFAULT, 6), ("claude-opus-4-1-20250805", 3), ("claude-haiku-4-5-20251001", 1))


def gen_claude(home: Path, target: int, *, seed: int = 1, turns: tuple[int, int] = (10, 80),
               text: tuple[int, int] = (100, 1500), truth: bool = False,
               files: int | None = None) -> Generated:
    """Claude Code transcripts until ``target`` bytes (or ``files`` files): one session per file,
    10-80 turns of ``tests.agent_logs.claude_turn`` with 100-1500 bytes of text per block."""
    t0 = time.perf_counter()
    rng = random.Random(seed)
    g = Generated("claude-code")
    projects = home / ".claude" / "projects"
    names, weights = zip(*CLAUDE_MODELS)
    while (g.bytes < target) if files is None else (len(g.files) < files):
        sid = _uuid(rng)
        n, size = rng.randint(*turns), rng.randint(*text)
        cwd = f"/home/dev/project-{rng.randrange(40):02d}"
        start = START + timedelta(seconds=rng.randrange(DAYS * 86400))
        model = rng.choices(names, weights)[0]
        data = compact(claude_session(sid, n, start=start, cwd=cwd, text_bytes=size))
        if model != CLAUDE_DEFAULT:
            data = data.replace(f'"{CLAUDE_DEFAULT}"'.encode(), f'"{model}"'.encode())
        g.add(projects / cwd.replace("/", "-") / f"{sid}.jsonl", data, start + timedelta(minutes=n))
        g.expected.update(expected_claude(1, n))
        if truth:
            _claude_truth(data, g.truth)
    g.seconds = time.perf_counter() - t0
    return g


def _claude_truth(data: bytes, truth: dict) -> None:
    """Tokens by (UTC day, model): one call per message id + requestId, its last line's usage,
    dated by its first line."""
    calls: dict[tuple, list] = {}
    for line in data.splitlines():
        rec = _dec.decode(line)
        message = rec.get("message")
        if rec.get("type") != "assistant" or not isinstance(message.get("usage"), dict):
            continue
        key = (message["id"], rec.get("requestId"))
        if key in calls:
            calls[key][2] = message["usage"]
        else:
            calls[key] = [rec["timestamp"][:10], message["model"], message["usage"]]
    for day, model, u in calls.values():
        b = truth[(day, model)]
        b["input"] += u.get("input_tokens", 0)
        b["output"] += u.get("output_tokens", 0)
        b["cache_read"] += u.get("cache_read_input_tokens", 0)
        b["cache_write"] += u.get("cache_creation_input_tokens", 0)


CODEX_MODELS = (("gpt-5-codex", 5), ("gpt-5.1-codex", 4), ("gpt-5.1-codex-mini", 1))
WORDS = ["the", "parser", "reads", "each", "line", "then", "cache", "keeps", "last", "offset",
         "so", "a", "restart", "resumes", "where", "it", "stopped", "and", "tests", "cover",
         "rotation", "truncation", "partial", "lines"]


def _words(rng: random.Random, size: int) -> str:
    out, n = [], 0
    while n < size:
        w = rng.choice(WORDS)
        out.append(w)
        n += len(w) + 1
    return " ".join(out)


def codex_rollout(sid: str, turns: int, start: datetime, cwd: str, model: str, text_bytes: int,
                  rng: random.Random, truth: dict) -> tuple[bytes, datetime]:
    """One Codex CLI rollout as Codex 0.5x-0.6x writes it. Per turn: task_started, turn_context,
    the user message (response_item + user_message event), a rate-limit-only token_count, two
    model calls (reasoning + function_call, its output; reasoning + assistant message) each
    followed by a token_count with last_token_usage and the cumulative total_token_usage, and
    task_complete. Every 4th turn repeats the last token_count with only the rate limits changed
    (Codex does: the total does not move, it is not a new call)."""
    lines: list[bytes] = []
    t = start
    used = rng.uniform(1, 30)

    def rec(kind: str, payload: dict, step: tuple[int, int] = (20, 1500)) -> None:
        nonlocal t
        t += timedelta(milliseconds=rng.randint(*step))
        lines.append(_enc.encode({"timestamp": _ts(t), "type": kind, "payload": payload}))

    def limits() -> dict:
        resets = int((START + timedelta(days=DAYS)).timestamp())
        return {"primary": {"used_percent": round(used, 1), "window_minutes": 300, "resets_at": resets},
                "secondary": {"used_percent": round(used / 4, 1), "window_minutes": 10080,
                              "resets_at": resets},
                "credits": None, "plan_type": "plus"}

    total = dict.fromkeys(("input_tokens", "cached_input_tokens", "output_tokens",
                           "reasoning_output_tokens", "total_tokens"), 0)
    context = rng.randint(6_000, 14_000)

    def call() -> dict:
        nonlocal context
        context += rng.randint(200, 4_000)
        cached = (context - rng.randint(100, 3_000)) // 256 * 256
        out = rng.randint(30, 1_800)
        last = {"input_tokens": context, "cached_input_tokens": max(0, cached),
                "output_tokens": out, "reasoning_output_tokens": rng.randint(0, out),
                "total_tokens": context + out}
        for k, v in last.items():
            total[k] += v
        b = truth[(_ts(t)[:10], model)]
        b["input"] += last["input_tokens"] - last["cached_input_tokens"]
        b["cache_read"] += last["cached_input_tokens"]
        b["output"] += last["output_tokens"]
        b["reasoning"] += last["reasoning_output_tokens"]
        return {"total_token_usage": dict(total), "last_token_usage": last,
                "model_context_window": 272_000}

    repo = cwd.rsplit("/", 1)[-1]
    rec("session_meta", {"id": sid, "timestamp": _ts(start), "cwd": cwd, "originator": "codex_cli_rs",
                         "cli_version": "0.58.0", "instructions": None, "source": "cli",
                         "model_provider": "openai",
                         "git": {"commit_hash": f"{rng.getrandbits(160):040x}", "branch": "main",
                                 "repository_url": f"git@github.com:acme/{repo}.git"}})
    rec("response_item", {"type": "message", "role": "user", "content": [{"type": "input_text", "text": (
        f"<environment_context>\n  <cwd>{cwd}</cwd>\n  <approval_policy>on-request</approval_policy>\n"
        "  <sandbox_mode>workspace-write</sandbox_mode>\n  <network_access>restricted</network_access>\n"
        "  <shell>bash</shell>\n</environment_context>")}]})
    for turn in range(turns):
        t = max(t, start + timedelta(minutes=3 * turn))
        turn_id = _uuid(rng)
        prompt = f"turn {turn}: {_words(rng, text_bytes // 2)}"
        rec("event_msg", {"type": "task_started", "turn_id": turn_id, "model_context_window": 272_000})
        rec("turn_context", {"turn_id": turn_id, "cwd": cwd, "approval_policy": "on-request",
                             "sandbox_policy": {"type": "workspace-write", "network_access": False,
                                                "exclude_tmpdir_env_var": False, "exclude_slash_tmp": False},
                             "model": model, "effort": "medium", "summary": "auto"})
        rec("response_item", {"type": "message", "role": "user",
                              "content": [{"type": "input_text", "text": prompt}]})
        rec("event_msg", {"type": "user_message", "message": prompt, "images": []})
        rec("event_msg", {"type": "token_count", "info": None, "rate_limits": limits()})
        summary = f"**Inspecting the code** {_words(rng, 120)}"
        rec("response_item", {"type": "reasoning", "summary": [{"type": "summary_text", "text": summary}],
                              "content": None, "encrypted_content": "gAAAAA" + "x" * rng.randint(400, 2_000)},
            (800, 9_000))
        rec("event_msg", {"type": "agent_reasoning", "text": summary})
        call_id = f"call_{rng.getrandbits(96):024x}"
        command = ["bash", "-lc", f"rg -n 'turn {turn}' src tests | head -50"]
        rec("response_item", {"type": "function_call", "name": "shell", "call_id": call_id,
                              "arguments": json.dumps({"command": command, "workdir": cwd,
                                                       "timeout_ms": 120_000})})
        rec("event_msg", {"type": "token_count", "info": call(), "rate_limits": limits()})
        output = _words(rng, text_bytes)
        rec("response_item", {"type": "function_call_output", "call_id": call_id,
                              "output": json.dumps({"output": output, "metadata": {
                                  "exit_code": 0, "duration_seconds": round(rng.uniform(0, 2), 1)}})})
        summary = f"**Writing the answer** {_words(rng, 80)}"
        rec("response_item", {"type": "reasoning", "summary": [{"type": "summary_text", "text": summary}],
                              "content": None, "encrypted_content": "gAAAAA" + "y" * rng.randint(400, 2_000)},
            (800, 9_000))
        rec("event_msg", {"type": "agent_reasoning", "text": summary})
        answer = f"Done: {_words(rng, text_bytes)}"
        rec("event_msg", {"type": "agent_message", "message": answer})
        rec("response_item", {"type": "message", "role": "assistant",
                              "content": [{"type": "output_text", "text": answer}]})
        used += rng.uniform(0, 1.5)
        info = call()
        rec("event_msg", {"type": "token_count", "info": info, "rate_limits": limits()})
        if turn % 4 == 3:
            used += 0.4
            rec("event_msg", {"type": "token_count", "info": info, "rate_limits": limits()})
        rec("event_msg", {"type": "task_complete", "turn_id": turn_id, "last_agent_message": answer})
    return b"".join(line + b"\n" for line in lines), t


def gen_codex(home: Path, target: int, *, seed: int = 2, turns: tuple[int, int] = (5, 40),
              text: tuple[int, int] = (100, 1500)) -> Generated:
    t0 = time.perf_counter()
    rng = random.Random(seed)
    g = Generated("codex")
    sessions = home / ".codex" / "sessions"
    names, weights = zip(*CODEX_MODELS)
    while g.bytes < target:
        sid = _uuid(rng)
        start = START + timedelta(seconds=rng.randrange(DAYS * 86400))
        data, end = codex_rollout(sid, rng.randint(*turns), start, f"/home/dev/project-{rng.randrange(40):02d}",
                                  rng.choices(names, weights)[0], rng.randint(*text), rng, g.truth)
        path = sessions / start.strftime("%Y/%m/%d") / f"rollout-{start:%Y-%m-%dT%H-%M-%S}-{sid}.jsonl"
        g.add(path, data, end)
    g.seconds = time.perf_counter() - t0
    return g


_COPILOT_IDS = re.compile(r'"((?:request|response)_[0-9a-f-]{36}|toolu_[A-Za-z0-9_]+)"')


def gen_copilot(home: Path, target: int, *, seed: int = 3,
                requests: tuple[int, int] = (100, 1500)) -> Generated:
    """VS Code chat sessions (version-3 JSON): the synthetic fixture's three requests (two done
    with token counts, tool calls, an edit and a denied command; one cancelled), repeated with
    new request, response and tool-call ids, 45 s apart, 100-1500 requests per file (0.3-4 MB),
    20 workspaces."""
    t0 = time.perf_counter()
    rng = random.Random(seed)
    g = Generated("copilot")
    doc = json.loads(COPILOT_FIXTURE.read_bytes())
    templates = [(s := json.dumps(r, separators=(",", ":")), sorted(set(_COPILOT_IDS.findall(s))))
                 for r in doc.pop("requests")]
    storage = home / ".config" / "Code" / "User" / "workspaceStorage"
    for w in range(20):
        ws = storage / f"{w:02d}{secrets.token_hex(15)}"
        ws.mkdir(parents=True)
        (ws / "workspace.json").write_text(json.dumps({"folder": f"file:///home/dev/project-{w:02d}"}))
    workspaces = sorted(storage.iterdir())
    while g.bytes < target:
        sid = _uuid(rng)
        start = int((START + timedelta(seconds=rng.randrange(DAYS * 86400))).timestamp() * 1000)
        reqs = []
        for k in range(rng.randint(*requests)):
            text, ids = rng.choices(templates, (9, 9, 2))[0]
            for old in ids:
                text = text.replace(f'"{old}"', f'"{old}-{sid[:8]}-{k}"')
            req = json.loads(text)
            req["timestamp"] = start + k * 45_000
            if isinstance(req.get("modelState"), dict):
                req["modelState"]["completedAt"] = req["timestamp"] + 2_100
            reqs.append(req)
        session = {**doc, "sessionId": sid, "creationDate": start - 10_000,
                   "lastMessageDate": reqs[-1]["timestamp"], "requests": reqs}
        data = json.dumps(session, separators=(",", ":")).encode()
        end = datetime.fromtimestamp(reqs[-1]["timestamp"] / 1000, tz=UTC)
        g.add(rng.choice(workspaces) / "chatSessions" / f"{sid}.json", data, end)
    g.seconds = time.perf_counter() - t0
    return g


GENERATORS = {"claude-code": gen_claude, "codex": gen_codex, "copilot": gen_copilot}


def available(agent: str) -> Adapter | None:
    """The agent's adapter, or None (with a note) when its module is not there."""
    from collector.adapters import adapter

    try:
        return adapter(agent)
    except ImportError as exc:
        print(f"note: no {agent} adapter ({exc}): {agent} skipped")
        return None


# -- helpers -----------------------------------------------------------------------------------


@contextlib.contextmanager
def workdir(keep: bool) -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="devlog-bench-collector-"))
    try:
        yield tmp
    finally:
        if keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def clean_env(tmp: Path, home: Path, **extra: str) -> dict[str, str]:
    """The environment of a devlog subprocess: nothing of this machine's devlog or agents."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DEVLOG_", "XDG_")) and k not in ("CLAUDE_CONFIG_DIR", "CODEX_HOME")}
    env.update(HOME=str(home), DEVLOG_CONFIG=str(tmp / "none.toml"), PYTHONUNBUFFERED="1",
               DEVLOG_COLLECTOR_STATE_DIR=str(tmp / "state"), **extra)
    return env


def devlog_cmd(*args: str) -> list[str]:
    script = Path(sys.executable).parent / "devlog"
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "app", *args]


def bench_database() -> contextlib.AbstractContextManager[str]:
    return scratch_database("devlog_bench_collector")


@contextlib.contextmanager
def devlog_server(db_url: str, tmp: Path) -> Iterator[str]:
    """A `devlog serve` on db_url (migrated at start); yields its GraphQL URL."""
    port = free_port()
    env = clean_env(tmp, tmp / "server-home", DEVLOG_DATABASE_URL=db_url, DEVLOG_LOG_LEVEL="warning")
    with open(tmp / "server.log", "wb") as log:
        proc = subprocess.Popen(devlog_cmd("serve", "--port", str(port)), env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            wait_ready(f"http://127.0.0.1:{port}/readyz", proc=proc)
            yield f"http://127.0.0.1:{port}/graphql"
        finally:
            stop(proc, 60)


async def _server_counts(db_url: str) -> dict[str, int]:
    conn = await asyncpg.connect(db_url)
    try:
        return dict(await conn.fetch("SELECT kind, count(*) FROM agent_event GROUP BY kind"))
    finally:
        await conn.close()


@dataclass
class Run:
    seconds: float
    returncode: int
    max_rss_mb: float
    cpu_seconds: float
    stdout: list[tuple[float, str]]  # (seconds since start, line)
    stderr: str


def run_measured(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> Run:
    """Run to the end; wall time, and the child's own peak RSS and CPU time (wait4)."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=err)
        lines: list[tuple[float, str]] = []

        def read() -> None:
            assert proc.stdout is not None
            for raw in proc.stdout:
                lines.append((time.perf_counter() - t0, raw.decode(errors="replace").rstrip("\n")))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        _pid, status, ru = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        reader.join(10)
        err.seek(0)
        return Run(seconds, proc.returncode, ru.ru_maxrss / 1024, ru.ru_utime + ru.ru_stime,
                   lines, err.read().decode(errors="replace"))


def median_run(runs: int, fn: Callable[[], tuple]) -> tuple[float, float, object]:
    """Median wall and CPU seconds of ``runs`` calls of fn() -> (wall, cpu, result); the last
    result."""
    results = [fn() for _ in range(runs)]
    return (statistics.median(r[0] for r in results), statistics.median(r[1] for r in results),
            results[-1][2])


def fmt_mb(n: int) -> str:
    return f"{n / MB:,.1f}"


# -- parse -------------------------------------------------------------------------------------


def cmd_parse(args: argparse.Namespace) -> None:
    from collector.adapters.base import Context, parse_file
    from collector.gitinfo import ProjectCache
    from collector.machine import this_machine

    print(f"{facts()}; {args.mb} MB of generated logs per agent")
    machine = this_machine().key
    rows = []
    with workdir(args.keep) as tmp:
        for agent in args.agents:
            adapter = available(agent)
            if adapter is None:
                continue
            home = tmp / agent / "home"
            g = GENERATORS[agent](home, args.mb * MB)
            say(f"{agent}: generated {len(g.files):,} files, {fmt_mb(g.bytes)} MB in {g.seconds:.1f}s")

            ctx = Context(machine=machine, project_of=ProjectCache())
            t0 = time.perf_counter()
            events = sum(len(parse_file(adapter, path, ctx)) for path in g.files)
            parse_s = time.perf_counter() - t0
            say(f"{agent}: parse_file {parse_s:.1f}s")

            scan_s, stored, skipped, found, db = reader_scan(agent, adapter, home, tmp / agent / "state",
                                                             machine, redact=True)
            say(f"{agent}: Reader.scan {scan_s:.1f}s")
            plain_s, *_ = reader_scan(agent, adapter, home, tmp / agent / "state-plain", machine,
                                      redact=False)
            say(f"{agent}: Reader.scan, redact=false {plain_s:.1f}s")
            if len(found) != len(g.files) or stored != events or skipped:
                print(f"warning: {agent}: Reader found {len(found)} of {len(g.files)} files, stored "
                      f"{stored:,} events (parse_file: {events:,}), skipped {skipped:,} lines")
            if g.expected and sum(g.expected.values()) != events:
                print(f"warning: {agent}: parsed {events:,} events, the generator expects "
                      f"{sum(g.expected.values()):,}")
            rows.append([agent, f"{len(g.files):,}", fmt_mb(g.bytes), f"{events:,}",
                         f"{parse_s:.1f}s", f"{g.bytes / MB / parse_s:.1f}", f"{events / parse_s:,.0f}",
                         f"{scan_s:.1f}s", f"{g.bytes / MB / scan_s:.1f}", f"{stored / scan_s:,.0f}",
                         f"{parse_s / scan_s:.2f}", fmt_mb(db),
                         f"{plain_s:.1f}s", f"{g.bytes / MB / plain_s:.1f}"])
            shutil.rmtree(tmp / agent, ignore_errors=True)
    print(table(["agent", "files", "MB", "events", "parse_file", "MB/s", "events/s",
                 "Reader.scan→SQLite", "MB/s", "events/s", "ratio", "outbox MB",
                 "same, redact=false", "MB/s"], rows))
    print("parse_file: read + parse only. Reader.scan→SQLite: discovery, parse, redact, encode, "
          "store in the outbox with cursors (a fresh buffer), idle() per file. ratio: its "
          "throughput over parse_file's. redact=false: the same scan with redaction off "
          "(DEVLOG_COLLECTOR_REDACT=false).")


def reader_scan(agent: str, adapter: Adapter, home: Path, state: Path, machine: str,
                *, redact: bool) -> tuple[float, int, int, list, int]:
    """Reader.scan (+ idle) of every file into a fresh outbox: (seconds, events stored, lines
    skipped, files found, outbox bytes)."""
    from collector.adapters.base import Context
    from collector.config import CollectorSettings
    from collector.gitinfo import ProjectCache
    from collector.outbox import Outbox
    from collector.source import Reader

    settings = CollectorSettings(state_dir=str(state), agents=[agent], max_buffer_events=10**9,
                                 redact=redact)
    outbox = Outbox(state / "buffer.sqlite3")
    reader = Reader(settings=settings, outbox=outbox,
                    ctx=Context(machine=machine, project_of=ProjectCache()),
                    adapters={agent: adapter}, env={}, home=home)
    t0 = time.perf_counter()
    found = list(reader.discover())
    stored = skipped = 0
    for a, path in found:
        r = reader.scan(a, path)
        stored += r.new_events + reader.idle(a, path).new_events
        skipped += r.skipped
    seconds = time.perf_counter() - t0
    outbox.close()
    db = sum(p.stat().st_size for p in state.iterdir())
    shutil.rmtree(state, ignore_errors=True)
    return seconds, stored, skipped, found, db


# -- ccusage -----------------------------------------------------------------------------------


def ensure_ccusage() -> str:
    """ccusage in bench/.cache (installed once); returns its version."""

    def version() -> subprocess.CompletedProcess:
        return subprocess.run([str(CCUSAGE), "--version"], capture_output=True, text=True,
                              check=False)

    if not CCUSAGE.exists():
        say("installing ccusage@latest into bench/.cache")
        subprocess.run(["npm", "install", "--prefix", str(CACHE), "--no-fund", "--no-audit",
                        "ccusage@latest"], check=True, stdout=subprocess.DEVNULL)
    v = version()
    if v.returncode != 0 and "native binary is not available" in v.stdout + v.stderr:
        print(f"note: ccusage@latest has no native binary for {sys.platform}-{platform.machine()}; "
              f"using ccusage@{CCUSAGE_FALLBACK}")
        subprocess.run(["npm", "install", "--prefix", str(CACHE), "--no-fund", "--no-audit",
                        f"ccusage@{CCUSAGE_FALLBACK}"], check=True, stdout=subprocess.DEVNULL)
        v = version()
    if v.returncode != 0:
        raise SystemExit(f"ccusage does not run: {v.stdout}{v.stderr}")
    return v.stdout.strip()


def ccusage_buckets(agent: str, doc: dict) -> dict:
    out: dict = defaultdict(Counter)
    for day in doc.get("daily", []):
        date = day["date"]
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
            date = datetime.strptime(date, "%b %d, %Y").strftime("%Y-%m-%d")
        models = (day.get("modelBreakdowns") if agent == "claude-code"
                  else [{"modelName": k, **v} for k, v in (day.get("models") or {}).items()])
        for m in models or []:
            b = out[(date, m["modelName"])]
            b["input"] += m.get("inputTokens", 0)
            b["output"] += m.get("outputTokens", 0)
            b["cache_read"] += m.get("cacheReadTokens", 0)
            b["cache_write"] += m.get("cacheCreationTokens", 0)
            b["reasoning"] += m.get("reasoningOutputTokens", 0)
    return out


def devlog_buckets(events: list) -> dict:
    out: dict = defaultdict(Counter)
    for e in events:
        if e.kind != "llm_call" or e.tokens is None:
            continue
        b = out[(e.ts.astimezone(UTC).strftime("%Y-%m-%d"), e.model)]
        for k in BUCKETS:
            b[k] += getattr(e.tokens, k)
    return out


def compare(agent: str, truth: dict, devlog: dict, ccusage: dict) -> None:
    buckets = BUCKETS if agent == "codex" else BUCKETS[:4]
    groups = sorted(set(truth) | set(devlog) | set(ccusage), key=lambda k: (k[0], str(k[1])))
    rows, diffs = [], []
    for bucket in buckets:
        tot = [sum(src[g][bucket] for g in groups if g in src) for src in (truth, devlog, ccusage)]
        bad_d = sum(1 for g in groups if truth.get(g, Counter())[bucket] != devlog.get(g, Counter())[bucket])
        bad_c = sum(1 for g in groups if truth.get(g, Counter())[bucket] != ccusage.get(g, Counter())[bucket])
        rows.append([bucket.replace("_", " "), f"{tot[0]:,}", f"{tot[1]:,}", f"{tot[2]:,}",
                     f"{len(groups) - bad_d}/{len(groups)}", f"{len(groups) - bad_c}/{len(groups)}"])
        for g in groups:
            vals = [src.get(g, Counter())[bucket] for src in (truth, devlog, ccusage)]
            if len(set(vals)) > 1:
                diffs.append([g[0], g[1], bucket, *(f"{v:,}" for v in vals)])
    days = len({g[0] for g in groups})
    models = len({g[1] for g in groups})
    print(f"\n{agent}: tokens by UTC day and model ({days} days x {models} models = {len(groups)} groups)")
    print(table(["bucket", "generated", "devlog", "ccusage", "devlog = generated",
                 "ccusage = generated"], rows))
    if diffs:
        print(f"{len(diffs)} (day, model, bucket) differ; first 12:")
        print(table(["day", "model", "bucket", "generated", "devlog", "ccusage"], diffs[:12]))
    else:
        print("all groups agree")


def cmd_ccusage(args: argparse.Namespace) -> None:
    from collector.adapters.base import Context, parse_file
    from collector.gitinfo import ProjectCache

    version = ensure_ccusage()
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
    print(f"{facts()}; {version}, node {node.stdout.strip()}; {args.mb} MB of generated logs per "
          f"agent; median of {args.runs} runs")
    timing_rows = []
    with workdir(args.keep) as tmp:
        home = tmp / "home"
        for agent in ("claude-code", "codex"):
            adapter = available(agent)
            if adapter is None:
                continue
            if agent == "claude-code":
                g = gen_claude(home, args.mb * MB, truth=True)
            else:
                g = gen_codex(home, args.mb * MB)
            say(f"{agent}: generated {len(g.files):,} files, {fmt_mb(g.bytes)} MB in {g.seconds:.1f}s")
            env = clean_env(tmp, home, CLAUDE_CONFIG_DIR=str(home / ".claude"),
                            CODEX_HOME=str(home / ".codex"), NO_COLOR="1", TZ="UTC")
            sub = "claude" if agent == "claude-code" else "codex"

            def ccusage(*extra: str, sub: str = sub, env: dict = env) -> tuple[float, float, dict]:
                r = run_measured([str(CCUSAGE), sub, "daily", "--json", "--offline", "-z", "UTC", *extra], env)
                if r.returncode:
                    raise SystemExit(f"ccusage failed ({r.returncode}): {r.stderr[-2000:]}")
                return r.seconds, r.cpu_seconds, json.loads("\n".join(line for _, line in r.stdout))

            def dry_run(agent: str = agent, env: dict = env) -> tuple[float, float, Run]:
                r = run_measured(devlog_cmd("collect", "backfill", "--dry-run", "--agent", agent), env)
                if r.returncode:
                    raise SystemExit(f"devlog collect backfill failed ({r.returncode}): {r.stderr[-2000:]}")
                return r.seconds, r.cpu_seconds, r

            def in_process(adapter: Adapter = adapter, g: Generated = g) -> tuple[float, float, list]:
                ctx = Context(machine="bench", project_of=ProjectCache())
                t0, c0 = time.perf_counter(), time.process_time()
                events = [e for path in g.files for e in parse_file(adapter, path, ctx)]
                return time.perf_counter() - t0, time.process_time() - c0, events

            def row(label: str, wall: float, cpu: float, base: tuple[float, float] | None,
                    agent: str = agent, g: Generated = g) -> list:
                return [agent, label, f"{wall:.2f}s", f"{g.bytes / MB / wall:.1f}", f"{cpu:.2f}s",
                        f"{wall / base[0]:.2f}" if base else "", f"{cpu / base[1]:.2f}" if base else ""]

            cc_s, cc_cpu, doc = median_run(args.runs, ccusage)
            base = (cc_s, cc_cpu)
            label = f"ccusage {sub} daily --json --offline"
            timing_rows.append(row(label, cc_s, cc_cpu, base))
            if agent == "claude-code":
                cc1_s, cc1_cpu, _ = median_run(args.runs, lambda: ccusage("--single-thread"))
                timing_rows.append(row(f"{label} --single-thread", cc1_s, cc1_cpu, base))
            dl_s, dl_cpu, run = median_run(args.runs, dry_run)
            timing_rows.append(row(f"devlog collect backfill --dry-run ({os.cpu_count()} workers)",
                                   dl_s, dl_cpu, base))
            one = dict(env, DEVLOG_COLLECTOR_WORKERS="1")
            w1_s, w1_cpu, _ = median_run(args.runs, lambda one=one: dry_run(env=one))
            timing_rows.append(row("devlog collect backfill --dry-run (no workers)", w1_s, w1_cpu, base))
            empty = dict(env, HOME=str(tmp / "empty"), CLAUDE_CONFIG_DIR=str(tmp / "empty" / ".claude"),
                         CODEX_HOME=str(tmp / "empty" / ".codex"))
            st_s, st_cpu, _ = median_run(args.runs, lambda empty=empty: dry_run(env=empty))
            timing_rows.append([agent, "  of which start-up (same, on no logs)", f"{st_s:.2f}s", "",
                                f"{st_cpu:.2f}s", "", ""])
            ip_s, ip_cpu, events = median_run(args.runs, in_process)
            timing_rows.append(row("devlog parse_file, in-process", ip_s, ip_cpu, base))
            compare(agent, g.truth, devlog_buckets(events), ccusage_buckets(agent, doc))
            llm = sum(1 for e in events if e.kind == "llm_call")
            print(f"{agent}: {len(g.files):,} files, {fmt_mb(g.bytes)} MB, {len(events):,} events "
                  f"({llm:,} LLM calls)")
            if g.expected and sum(g.expected.values()) != len(events):
                print(f"warning: the generator expects {sum(g.expected.values()):,} events")
            summary = [line for _, line in run.stdout if line.strip().startswith(("│", "┃", "|"))]
            if summary:
                print("devlog collect backfill --dry-run said:\n" + "\n".join(summary))
            shutil.rmtree(home, ignore_errors=True)
    print()
    print(table(["agent", "run", "wall", "MB/s", "CPU (user+sys)", "wall / ccusage",
                 "CPU / ccusage"], timing_rows))
    print("Target: devlog/ccusage <= 1.0 (wall). Both read the same files from the page cache; "
          "ccusage is a native binary and loads files in parallel unless --single-thread. CPU: "
          "of the process (wait4), of this process for the in-process parse.")


# -- backfill ----------------------------------------------------------------------------------


def cmd_backfill(args: argparse.Namespace) -> None:
    print(f"{facts()}; {args.gb} GB of generated Claude Code history; local PostgreSQL")
    with workdir(args.keep) as tmp:
        home = tmp / "home"
        g = gen_claude(home, int(args.gb * 1000 * MB))
        expected = sum(g.expected.values())
        say(f"generated {len(g.files):,} files, {fmt_mb(g.bytes)} MB, {expected:,} events in {g.seconds:.0f}s")
        with bench_database() as db_url, devlog_server(db_url, tmp) as url:
            extra = {"DEVLOG_COLLECTOR_SERVER_URL": url}
            if args.max_buffer_events:
                extra["DEVLOG_COLLECTOR_MAX_BUFFER_EVENTS"] = str(args.max_buffer_events)
            env = clean_env(tmp, home, **extra)
            runs: list[Run] = []
            while True:
                # A backfill that fills the buffer sends it and stops reading: run it again, as
                # its user would, until a run does not fill it.
                say(f"devlog collect backfill (run {len(runs) + 1}) …")
                runs.append(run_measured(devlog_cmd("collect", "backfill", "--agent", "claude-code"), env))
                if runs[-1].returncode or "buffer is full" not in runs[-1].stderr or len(runs) == 20:
                    break
            counts = asyncio.run(_server_counts(db_url))
        state = tmp / "state"
        buffer_mb = sum(p.stat().st_size for p in state.glob("buffer.sqlite3*")) / MB
    stored = sum(counts.values())
    seconds = sum(r.seconds for r in runs)
    print(table(["", "value"], [
        ["files / MB / sessions", f"{len(g.files):,} / {fmt_mb(g.bytes)} / {g.sessions:,}"],
        ["events generated (expected_claude)", f"{expected:,}"],
        ["events in agent_event", f"{stored:,}" + ("  OK" if stored == expected else "  MISMATCH")],
        ["runs of devlog collect backfill (exit codes)",
         f"{len(runs)} ({', '.join(str(r.returncode) for r in runs)})"],
        ["wall, process start to exit (all runs)", f"{seconds:.1f}s"],
        ["events/s end to end", f"{stored / seconds:,.0f}"],
        ["MB/s end to end", f"{g.bytes / MB / seconds:.1f}"],
        ["collector CPU time (user+sys)", f"{sum(r.cpu_seconds for r in runs):.1f}s"],
        ["collector peak RSS (wait4 ru_maxrss)", f"{max(r.max_rss_mb for r in runs):.0f} MB"],
        ["buffer.sqlite3* size at the end", f"{buffer_mb:,.0f} MB"],
    ]))
    if len(runs) > 1:
        print(f"note: runs 1-{len(runs) - 1} filled the buffer (max_buffer_events), sent it and "
              "exited 0 without reading the rest; the next run went on from the cursors.")
    if stored != expected:
        kinds = sorted(set(counts) | set(g.expected))
        print(table(["kind", "expected", "in agent_event"],
                    [[k, f"{g.expected.get(k, 0):,}", f"{counts.get(k, 0):,}"] for k in kinds]))
    run = runs[-1]
    tail = [line for _, line in run.stdout if line.strip()][-4:] + run.stderr.strip().splitlines()[-8:]
    if tail:
        print("collector output (end):\n  " + "\n  ".join(tail))


# -- idle --------------------------------------------------------------------------------------


def _stat_of(path: str) -> tuple[int, list[str]]:
    """(ppid, fields after the command name) of a /proc stat file."""
    text = Path(path).read_text()
    rest = text[text.rindex(")") + 2:].split()
    return int(rest[1]), rest


def _stat(pid: int) -> tuple[int, list[str]]:
    return _stat_of(f"/proc/{pid}/stat")


def _tree(pid: int) -> list[int]:
    """pid and its descendants."""
    parents: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                parents[_stat(int(entry))[0]].append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, []))
    return out


def _status_of(path: str, key: str) -> int:
    for line in Path(path).read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _status(pid: int, key: str) -> int:
    return _status_of(f"/proc/{pid}/status", key)


def sample(pid: int) -> tuple[float, float, dict[str, tuple[float, int]]]:
    """(RSS MB, CPU seconds incl. reaped children, {thread: (CPU seconds, context switches)})
    of pid and its descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    rss = cpu = 0
    threads: dict[str, tuple[float, int]] = {}
    for p in _tree(pid):
        with contextlib.suppress(OSError):
            _ppid, f = _stat(p)
            cpu += sum(int(x) for x in f[11:15])  # utime stime cutime cstime
            rss += _status(p, "VmRSS")
            for task in os.listdir(f"/proc/{p}/task"):
                base = f"/proc/{p}/task/{task}"
                name = Path(f"{base}/comm").read_text().strip()
                _pp, tf = _stat_of(f"{base}/stat")
                switches = sum(_status_of(f"{base}/status", k) for k in
                               ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"))
                threads[f"{p}/{task} {name}"] = ((int(tf[11]) + int(tf[12])) / tick, switches)
    return rss / 1024, cpu / tick, threads


def cmd_idle(args: argparse.Namespace) -> None:
    print(f"{facts()}; {args.files} Claude Code files, {args.seconds}s idle; local PostgreSQL")
    agents = [a for a in AGENTS if available(a) is not None]
    with workdir(args.keep) as tmp:
        home = tmp / "home"
        g = gen_claude(home, 0, files=args.files, turns=(3, 3), text=(200, 200))
        expected = sum(g.expected.values())
        buffer = tmp / "state" / "buffer.sqlite3"
        with bench_database() as db_url, devlog_server(db_url, tmp) as url:
            env = clean_env(tmp, home, DEVLOG_COLLECTOR_SERVER_URL=url)
            with open(tmp / "collector.log", "wb") as log:
                t0 = time.perf_counter()
                proc = subprocess.Popen(devlog_cmd("collect", *(f"--agent={a}" for a in agents)),
                                        env=env, stdout=log, stderr=subprocess.STDOUT)
                try:
                    caught_up = _wait_caught_up(proc, buffer, len(g.files), expected, 600)
                    backfill_s = time.perf_counter() - t0
                    hwm = _status(proc.pid, "VmHWM") / 1024
                    time.sleep(5)  # let the quiet-file closing and the sender settle
                    rss, cpu0, th0 = sample(proc.pid)
                    rss_all = [rss]
                    s0 = time.perf_counter()
                    while time.perf_counter() - s0 < args.seconds:
                        time.sleep(1)
                        rss_all.append(sample(proc.pid)[0])
                    _rss, cpu1, th1 = sample(proc.pid)
                    span = time.perf_counter() - s0
                    threads = len(os.listdir(f"/proc/{proc.pid}/task"))
                    children = len(_tree(proc.pid)) - 1
                finally:
                    stop(proc, 30)
            counts = asyncio.run(_server_counts(db_url))
        log_tail = (tmp / "collector.log").read_text(errors="replace").strip().splitlines()[-5:]
    stored = sum(counts.values())
    cpu_pct = (cpu1 - cpu0) / span * 100
    switches = sum(v[1] for v in th1.values()) - sum(v[1] for v in th0.values())
    print(table(["", "value", "target"], [
        ["files / MB", f"{len(g.files):,} / {fmt_mb(g.bytes)}", ""],
        ["agents enabled (roots watched: those that exist)", ", ".join(agents), ""],
        ["backfill: start → all delivered", f"{backfill_s:.1f}s" if caught_up else "NOT CAUGHT UP", ""],
        ["events on the server / expected", f"{stored:,} / {expected:,}", ""],
        ["peak RSS during backfill (VmHWM)", f"{hwm:.1f} MB", ""],
        [f"idle RSS over {span:.0f}s: mean / max", f"{statistics.mean(rss_all):.1f} / {max(rss_all):.1f} MB",
         "< 60 MB"],
        ["idle CPU, % of one core", f"{cpu_pct:.2f} %", "< 1 %"],
        ["context switches/s (all threads)", f"{switches:,} / {span:.0f}s = {switches / span:.1f}", ""],
        ["threads / child processes", f"{threads} / {children}", ""],
    ]))
    rows = [[name, f"{(th1[name][0] - th0[name][0]) / span * 100:.2f} %",
             f"{(th1[name][1] - th0[name][1]) / span:.1f}"] for name in th1 if name in th0]
    print(table(["thread (pid/tid comm)", "CPU", "context switches/s"], rows))
    if not caught_up or stored != expected:
        print("collector log (end):\n  " + "\n  ".join(log_tail))


def _wait_caught_up(proc: subprocess.Popen, buffer: Path, files: int, expected: int,
                    timeout: float) -> bool:
    """Until the buffer knows every file, holds nothing and counted every event delivered."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"the collector exited with {proc.returncode}")
        time.sleep(0.25)
        if not buffer.exists():
            continue
        try:
            db = sqlite3.connect(f"file:{buffer}?mode=ro", uri=True, timeout=5)
            try:
                known = db.execute("SELECT count(*) FROM file").fetchone()[0]
                pending = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
                row = db.execute("SELECT value FROM meta WHERE key = 'delivered'").fetchone()
            finally:
                db.close()
        except sqlite3.Error:
            continue
        if known >= files and pending == 0 and row and int(row[0]) >= expected:
            return True
    return False


# -- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("parse", help="parse_file and Reader.scan throughput per agent")
    p.add_argument("--mb", type=int, default=200, help="MB of generated logs per agent")
    p.add_argument("--agents", type=lambda s: s.split(","), default=list(AGENTS))
    p.set_defaults(fn=cmd_parse)
    p = sub.add_parser("ccusage", help="devlog vs ccusage: wall time and token totals")
    p.add_argument("--mb", type=int, default=100, help="MB of generated logs per agent")
    p.add_argument("--runs", type=int, default=3)
    p.set_defaults(fn=cmd_ccusage)
    p = sub.add_parser("backfill", help="devlog collect backfill into a real server")
    p.add_argument("--gb", type=float, default=1.0)
    p.add_argument("--max-buffer-events", type=int, default=None,
                   help="DEVLOG_COLLECTOR_MAX_BUFFER_EVENTS for the run [collector default]")
    p.set_defaults(fn=cmd_backfill)
    p = sub.add_parser("idle", help="RSS and CPU of a live collector with nothing to do")
    p.add_argument("--files", type=int, default=500)
    p.add_argument("--seconds", type=int, default=60)
    p.set_defaults(fn=cmd_idle)
    for p in sub.choices.values():
        p.add_argument("--keep", action="store_true", help="keep the generated data")
    args = parser.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
