"""Secrets never leave the machine; ordinary text is left alone."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from collector.redact import prepare, redact_text, redact_value
from collector.wire import Event

SECRETS = [
    ("export ANTHROPIC_API_KEY=sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123", "sk-ant-api03", "anthropic-key"),
    ("key sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz012345 here", "sk-proj-AbCd", "openai-key"),
    ("git clone https://ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789@github.com/a/b", "ghp_AbCd", "github-token"),
    ("aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE", "aws-access-key"),
    ("psql postgresql://admin:hunter2secret@db:5432/app", "hunter2secret", "url-password"),
    ("curl -H 'Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345'", "abcdefghijklmnopqrstuvwxyz", "auth-header"),
    ('{"password": "correct-horse-battery"}', "correct-horse", "secret-assignment"),
    ("DB_PASSWORD=s3cr3t-value\nOTHER=1", "s3cr3t-value", "secret-assignment"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\n-----END OPENSSH PRIVATE KEY-----",
     "b3BlbnNzaC1rZXktdjEAAAA", "private-key"),
    ("token xoxb-1234567890-abcdefghij", "xoxb-1234567890", "slack-token"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
     "eyJzdWIiOiIxMjM0", "jwt"),
    ("use dlk_AbCdEfGhIjKlMnOpQrStUvWxYz0123 for ingest", "dlk_AbCd", "devlog-key"),
]


@pytest.mark.parametrize("text, secret, kind", SECRETS, ids=[s[2] + str(i) for i, s in enumerate(SECRETS)])
def test_secret_is_masked(text: str, secret: str, kind: str) -> None:
    out = redact_text(text)
    assert secret not in out
    assert f"[REDACTED:{kind}]" in out


@pytest.mark.parametrize("text", [
    "max_tokens=4096 and the token count is 12", "see https://example.com/path?q=1",
    "def password_strength(pw): ...", "the secret to good tests is honesty", "user@example.com",
])
def test_ordinary_text_is_untouched(text: str) -> None:
    assert redact_text(text) == text


def test_payload_strings_are_redacted_at_any_depth() -> None:
    value = {"input": {"command": "echo sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz012345", "n": 3},
             "list": ["AKIAIOSFODNN7EXAMPLE", 5, None]}
    out = redact_value(value)
    assert "sk-proj-AbCd" not in str(out) and "AKIAIOSFODNN7EXAMPLE" not in str(out)
    assert out["input"]["n"] == 3 and out["list"][1:] == [5, None]


def _event(**fields) -> Event:
    return Event(id=uuid.uuid4(), kind="tool_call", ts=datetime.now(timezone.utc), agent="claude-code",
                 session="s", machine="m", **fields)


def test_prepare_redacts_every_text_field() -> None:
    secret = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz012345"
    e = prepare(_event(content=secret, command=f"curl -d {secret}", error=secret,
                       payload={"x": secret}, tool_name="Bash"), redact=True, metadata_only=False)
    assert secret not in str((e.content, e.command, e.error, e.payload))
    assert e.tool_name == "Bash"


def test_metadata_only_keeps_facts_and_drops_content() -> None:
    e = prepare(_event(content="plan", command="rm -rf /", payload={"a": 1}, tool_name="Bash",
                       file_path="/src/a.py", lines_added=3, error="boom"),
                redact=True, metadata_only=True)
    assert (e.content, e.command, e.payload) == (None, None, None)
    assert e.error == "(content not sent)"
    assert (e.tool_name, e.file_path, e.lines_added) == ("Bash", "/src/a.py", 3)


def test_redaction_off_sends_text_as_is() -> None:
    e = _event(content="AKIAIOSFODNN7EXAMPLE")
    assert prepare(e, redact=False, metadata_only=False) is e
