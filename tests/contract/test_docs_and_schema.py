"""The contract files and the docs match the code."""

from __future__ import annotations

import inspect
import subprocess

import pytest
import typer

from app.cli import _register, cli
from app.gql.schema import sdl
from app.settings import env_name, field_docs
from tests.helpers import REPO, devlog_cmd, subprocess_env


def test_committed_schema_matches_code() -> None:
    committed = (REPO / "graphql" / "schema.graphql").read_text(encoding="utf-8")
    assert committed == sdl(), "graphql/schema.graphql is stale: run `devlog graphql schema -o graphql/schema.graphql`"


def test_schema_check_command_detects_drift(tmp_path) -> None:
    stale = tmp_path / "schema.graphql"
    stale.write_text("type Query { nothing: Int }\n")
    result = subprocess.run(devlog_cmd("graphql", "schema", "--check", str(stale)),
                            capture_output=True, text=True, env=subprocess_env(), check=False)
    assert result.returncode == 1 and "out of date" in result.stderr
    ok = subprocess.run(devlog_cmd("graphql", "schema", "--check", str(REPO / "graphql" / "schema.graphql")),
                        capture_output=True, text=True, env=subprocess_env(), check=False)
    assert ok.returncode == 0, ok.stderr


def test_readme_documents_every_setting() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = [env_name(f) for f in field_docs() if f"`{env_name(f)}`" not in readme]
    assert not missing, f"README.md does not document {missing}"


def test_operations_are_valid_against_the_schema() -> None:
    from app.gql.schema import schema
    from graphql import parse, validate

    files = sorted((REPO / "graphql" / "operations").glob("*.graphql"))
    assert files
    for path in files:
        errors = validate(schema._schema, parse(path.read_text(encoding="utf-8")))
        assert not errors, f"{path.name}: {errors}"


def test_readme_documents_every_collector_setting() -> None:
    from collector.config import env_name as collector_env_name
    from collector.config import field_docs as collector_field_docs

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = [collector_env_name(f) for f in collector_field_docs()
               if f"`{collector_env_name(f)}`" not in readme]
    assert not missing, f"README.md does not document {missing}"


@pytest.mark.parametrize("command", [["serve"], ["collect"], ["collect", "backfill"], ["db", "migrate"]])
def test_help_paragraphs_wrap_at_the_terminal_width(command: list[str]) -> None:
    """Docstrings are wrapped in the source; --help rejoins each paragraph, so on a wide terminal
    a paragraph is one line (not the source's line breaks), and `devlog collect` renders the same
    on its own fast path as under the full CLI."""
    _register()
    env = subprocess_env(COLUMNS="400", TERM="dumb")
    text = subprocess.run(devlog_cmd(*command, "--help"), env=env, capture_output=True, text=True,
                          timeout=60, check=True).stdout
    lines = [line.strip() for line in text.splitlines()]
    paragraphs = [line for line in lines if line and not line.startswith(("╭", "│", "╰", "Usage"))]
    assert len(paragraphs) >= 1
    click_command = typer.main.get_command(cli)
    for name in command:
        click_command = click_command.commands[name]
    for para in inspect.cleandoc(click_command.help or "").split("\n\n"):
        assert " ".join(para.replace("\\[", "[").split()) in paragraphs, para
