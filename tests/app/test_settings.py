from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import ConfigError
from app.settings import field_docs, load_settings, mask_url


def test_defaults(tmp_path: Path) -> None:
    s = load_settings({"DEVLOG_CONFIG": str(tmp_path / "none.toml"), "HOME": str(tmp_path)})
    assert (s.host, s.port, s.database_url, s.migrate_on_start) == ("127.0.0.1", 3200, None, True)
    assert s.resolved_data_dir().name == "devlog"


def test_env_overrides_file_and_types_are_converted(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('port = 4000\nhost = "0.0.0.0"\nlog_level = "debug"\n'
                   '[collector]\nserver_url = "ignored by the server settings"\n')
    s = load_settings({"DEVLOG_CONFIG": str(cfg), "DEVLOG_PORT": "4100",
                       "DEVLOG_MIGRATE_ON_START": "false", "DEVLOG_DB_CONNECT_TIMEOUT": "2.5"})
    assert s.port == 4100  # env wins over the file
    assert s.host == "0.0.0.0"  # file wins over the default
    assert s.log_level == "debug"
    assert s.migrate_on_start is False
    assert s.db_connect_timeout == 2.5


def test_database_url_aliases(tmp_path: Path) -> None:
    base = {"DEVLOG_CONFIG": str(tmp_path / "none.toml")}
    assert load_settings(base | {"DATABASE_URL": "postgresql://a/b"}).database_url == "postgresql://a/b"
    both = base | {"DATABASE_URL": "postgresql://a/b", "DEVLOG_DATABASE_URL": "postgresql://c/d"}
    assert load_settings(both).database_url == "postgresql://c/d"


def test_bad_values_name_the_variable(tmp_path: Path) -> None:
    base = {"DEVLOG_CONFIG": str(tmp_path / "none.toml")}
    with pytest.raises(ConfigError, match="DEVLOG_PORT"):
        load_settings(base | {"DEVLOG_PORT": "eighty"})
    with pytest.raises(ConfigError, match="DEVLOG_TIMESCALE"):
        load_settings(base | {"DEVLOG_TIMESCALE": "maybe"})


def test_bad_file_is_reported(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text("port = \n")
    with pytest.raises(ConfigError, match=str(cfg)):
        load_settings({"DEVLOG_CONFIG": str(cfg)})
    cfg.write_text('prot = 1\n')
    with pytest.raises(ConfigError, match="unknown setting.*prot"):
        load_settings({"DEVLOG_CONFIG": str(cfg)})


def test_secrets_are_masked() -> None:
    assert mask_url("postgresql://u:s3cret@db:5432/x") == "postgresql://u:***@db:5432/x"
    assert mask_url("postgresql://db/x") == "postgresql://db/x"
    s = load_settings({"DEVLOG_DATABASE_URL": "postgresql://u:s3cret@db/x",
                       "DEVLOG_CONFIG": "/nonexistent.toml"})
    assert "s3cret" not in repr(s.masked())


def test_every_setting_is_documented() -> None:
    docs = field_docs()
    assert docs and all(docs.values()), [k for k, v in docs.items() if not v]
