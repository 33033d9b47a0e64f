"""Where events come from: the project of a working directory, this machine, the settings."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from collector.config import ConfigError, load_collector_settings
from collector.gitinfo import ProjectCache, describe
from collector.machine import machine_kind, this_machine


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                               "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(cwd), "PATH": "/usr/bin:/bin"}
                          ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    (root / "src" / "deep").mkdir(parents=True)
    git(root, "init", "-q", "-b", "feature/x")
    git(root, "remote", "add", "origin", "git@github.com:Acme/App.git")
    (root / "f").write_text("x")
    git(root, "add", "f")
    git(root, "commit", "-q", "-m", "one")
    return root


def test_repository_facts_from_a_subfolder(repo: Path) -> None:
    ref = describe(str(repo / "src" / "deep"))
    assert ref.remote == "git@github.com:Acme/App.git"
    assert ref.path == str(repo) and ref.name == "app"
    assert ref.branch == "feature/x"
    assert ref.commit == git(repo, "rev-parse", "HEAD")


def test_packed_refs_and_worktrees(repo: Path, tmp_path: Path) -> None:
    git(repo, "pack-refs", "--all")
    assert describe(str(repo)).commit == git(repo, "rev-parse", "HEAD")
    worktree = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "other", str(worktree))
    ref = describe(str(worktree))
    assert ref.branch == "other" and ref.remote == "git@github.com:Acme/App.git"
    assert ref.path == str(worktree)


def test_folder_without_git_is_identified_by_path(tmp_path: Path) -> None:
    ref = describe(str(tmp_path / "plain"))
    assert ref.remote is None and ref.path == str(tmp_path / "plain") and ref.name == "plain"
    assert describe("relative/or/windows").path == "relative/or/windows"


def test_project_cache_remembers(repo: Path) -> None:
    cache = ProjectCache(ttl=60)
    first = cache(str(repo))
    git(repo, "checkout", "-q", "-b", "moved")
    assert cache(str(repo)) is first  # within the TTL
    assert ProjectCache(ttl=0)(str(repo)).branch == "moved"


def test_machine_identity_is_stable_with_its_kind() -> None:
    a, b = this_machine({}), this_machine({})
    assert a.key == b.key and a.hostname and a.os
    assert machine_kind({"GITHUB_ACTIONS": "true"}) == "ci"
    assert machine_kind({"CODESPACES": "true", "CI": "1"}) == "codespaces"
    assert machine_kind({"SSH_CONNECTION": "1.2.3.4 5 6.7.8.9 22"}) == "ssh"


def test_settings_from_toml_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('port = 3300\n[collector]\nserver_url = "https://d.example/graphql"\n'
                      'agents = ["codex"]\nextra_paths = ["codex=/mnt/x", "bogus"]\n')
    s = load_collector_settings({"DEVLOG_CONFIG": str(config), "DEVLOG_COLLECTOR_BATCH_SIZE": "50"})
    assert s.server_url == "https://d.example/graphql" and s.agents == ["codex"] and s.batch_size == 50
    assert s.paths_for("codex") == [Path("/mnt/x")] and s.paths_for("claude-code") == []
    env = {"DEVLOG_CONFIG": str(config), "DEVLOG_COLLECTOR_AGENTS": "claude-code, copilot"}
    assert load_collector_settings(env).agents == ["claude-code", "copilot"]


@pytest.mark.parametrize("env, message", [
    ({"DEVLOG_COLLECTOR_BATCH_SIZE": "many"}, "collector setting batch_size (DEVLOG_COLLECTOR_BATCH_SIZE)"),
    ({"DEVLOG_COLLECTOR_AGENTS": "cursor"}, "unknown agent(s) cursor"),
    ({"DEVLOG_COLLECTOR_BATCH_SIZE": "0"}, "batch_size must be >= 1"),
])
def test_bad_settings_are_one_clear_message(env: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_collector_settings({"DEVLOG_CONFIG": str(tmp_path / "none.toml"), **env})


def test_api_key_is_masked() -> None:
    s = load_collector_settings({"DEVLOG_CONFIG": "/nonexistent", "DEVLOG_COLLECTOR_API_KEY": "dlk_" + "x" * 40})
    assert "x" * 10 not in str(s.masked())
