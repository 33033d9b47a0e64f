"""collector.service: the systemd unit and launchd plist, install and uninstall.

Nothing here touches the real ~/.config or the real service managers: every test passes
``home=tmp_path``, XDG_CONFIG_HOME is removed or pointed into tmp_path, and PATH holds only
fake ``systemctl``/``launchctl`` scripts that record their arguments.
"""

from __future__ import annotations

import configparser
import os
import plistlib
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from collector import service
from collector.service import (
    ServiceError,
    collector_command,
    collector_env,
    install_service,
    render_launchd_plist,
    render_systemd_unit,
    uninstall_service,
)

TRICKY = ["a b", "50%", 'say "hi"', "back\\slash", "$HOME", "${HOME}", ";", "it's", "%h", "t\tn\n"]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No XDG_CONFIG_HOME, and a PATH with nothing on it but what a test puts in tmp/bin."""
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def fake_tool(bin_dir: Path, name: str, *, rc: int = 0, stderr: str = "",
              fail_on: str = "") -> Path:
    """A ``name`` script on PATH appending its arguments to ``<name>.log``; exits ``rc``.

    With ``fail_on``, it exits 1 only when that word is among its arguments.
    """
    log = bin_dir.parent / f"{name}.log"
    script = bin_dir / name
    fail = (f'case " $* " in *" {fail_on} "*) echo "{name}: failed" >&2; exit 1;; esac\n'
            if fail_on else "")
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$*" >> "{log}"\n'
        f"{fail}"
        + (f'echo "{stderr}" >&2\n' if stderr else "")
        + f"exit {rc}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return log


def calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def unit_path(home: Path) -> Path:
    return home / ".config" / "systemd" / "user" / "devlog-collector.service"


def parse_unit(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


_ESC = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "s": " "}


def systemd_split(value: str, *, exec_time_dollars: bool = True) -> list[str]:
    """A reference reading of an ExecStart= value (systemd.syntax(7), systemd.service(5)).

    Specifiers first (only ``%%`` is expected here), then whitespace splitting with quotes and
    C escapes, then (ExecStart=, not Environment=) ``$$`` to ``$`` as at exec time.
    """
    assert re.search(r"%[^%]", value.replace("%%", "")) is None, f"bare specifier in {value!r}"
    value = value.replace("%%", "%")
    words: list[str] = []
    i, n = 0, len(value)
    while i < n:
        if value[i].isspace():
            i += 1
            continue
        quote = value[i] if value[i] in "\"'" else None
        i += bool(quote)
        word = []
        while i < n:
            char = value[i]
            if quote and char == quote:
                i += 1
                assert i == n or value[i].isspace(), "closing quote not followed by whitespace"
                break
            if not quote and char.isspace():
                break
            if char == "\\":
                code = value[i + 1]
                if code == "x":
                    word.append(chr(int(value[i + 2:i + 4], 16)))
                    i += 4
                    continue
                word.append(_ESC[code])
                i += 2
                continue
            word.append(char)
            i += 1
        else:
            assert not quote, f"unbalanced quote in {value!r}"
        text = "".join(word)
        words.append(text.replace("$$", "$") if exec_time_dollars else text)
    return words


# --- rendering ---------------------------------------------------------------------------


def test_systemd_unit_sections_and_keys() -> None:
    args = ["/opt/devlog/bin/devlog", "collect"]
    unit = parse_unit(render_systemd_unit(args, {"DEVLOG_CONFIG": "/etc/devlog.toml"}))
    assert unit.sections() == ["Unit", "Service", "Install"]
    assert unit["Unit"]["Description"]
    assert unit["Unit"]["After"] == "network-online.target"
    svc = unit["Service"]
    assert svc["ExecStart"] == "/opt/devlog/bin/devlog collect"
    assert svc["Restart"] == "on-failure"
    assert svc["RestartSec"] == "5"
    assert svc["Nice"] == "10"
    assert svc["KillSignal"] == "SIGTERM"
    assert svc["TimeoutStopSec"] == "15"
    assert svc["MemoryHigh"] == "200M"
    assert svc["Environment"] == '"DEVLOG_CONFIG=/etc/devlog.toml"'
    assert unit["Install"]["WantedBy"] == "default.target"


def test_systemd_exec_start_quotes_space_percent_quotes_backslash_dollar() -> None:
    args = ["/opt/dev log/bin/devlog", "collect", *TRICKY]
    text = render_systemd_unit(args, {})
    (line,) = [ln for ln in text.splitlines() if ln.startswith("ExecStart=")]
    assert '"/opt/dev log/bin/devlog" collect "a b" "50%%"' in line
    assert '"say \\"hi\\""' in line and '"back\\\\slash"' in line and '"$$HOME"' in line
    assert "\t" not in line
    assert systemd_split(line.removeprefix("ExecStart=")) == args


def test_systemd_environment_lines_are_quoted() -> None:
    env = {"DEVLOG_CONFIG": "/my dir/50% \"x\"\\.toml", "DEVLOG_COLLECTOR_X": "$HOME"}
    lines = [ln for ln in render_systemd_unit(["/bin/devlog", "collect"], env).splitlines()
             if ln.startswith("Environment=")]
    assert lines == ['Environment="DEVLOG_CONFIG=/my dir/50%% \\"x\\"\\\\.toml"',
                     'Environment="DEVLOG_COLLECTOR_X=$HOME"']  # no $-expansion in Environment=
    assert [systemd_split(ln.removeprefix("Environment="), exec_time_dollars=False)
            for ln in lines] == [[f"{k}={v}"] for k, v in env.items()]


def test_systemd_unit_rejects_relative_executable_and_bad_env_names() -> None:
    with pytest.raises(ServiceError, match="absolute"):
        render_systemd_unit(["devlog", "collect"], {})
    with pytest.raises(ServiceError, match="variable name"):
        render_systemd_unit(["/bin/devlog", "collect"], {"BAD NAME": "x"})


def test_systemd_unit_mentions_where_the_api_key_goes() -> None:
    text = render_systemd_unit(["/bin/devlog", "collect"], {})
    assert "API key" in text and "config file" in text


def test_launchd_plist_round_trips(tmp_path: Path) -> None:
    args = ["/Users/me/my tools/devlog", "collect", "50%"]
    text = render_launchd_plist(args, {"DEVLOG_CONFIG": "/x.toml"}, tmp_path / "logs")
    agent = plistlib.loads(text.encode())
    assert agent["Label"] == "dev.devlog.collector"
    assert agent["ProgramArguments"] == args
    assert agent["EnvironmentVariables"] == {"DEVLOG_CONFIG": "/x.toml"}
    assert agent["RunAtLoad"] is True
    assert agent["KeepAlive"] == {"SuccessfulExit": False}
    assert agent["ProcessType"] == "Background"
    assert agent["StandardOutPath"].startswith(str(tmp_path / "logs"))
    assert agent["StandardErrorPath"].startswith(str(tmp_path / "logs"))
    assert "EnvironmentVariables" not in plistlib.loads(
        render_launchd_plist(args, {}, tmp_path).encode())


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze", path=os.defpath + ":/usr/bin:/bin")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    unit = tmp_path / "units" / "devlog-collector.service"
    unit.parent.mkdir()
    unit.write_text(render_systemd_unit(
        [sys.executable, "-c", "pass", *TRICKY],
        {"DEVLOG_CONFIG": "/my dir/50% \"x\".toml", "DEVLOG_COLLECTOR_SERVER": "http://h:1/"}))
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "PATH": "/usr/bin:/bin",
           "SYSTEMD_LOG_LEVEL": "notice"}
    try:
        done = subprocess.run([analyze, "--man=no", "verify", "--user", str(unit)],
                              env=env, capture_output=True, text=True, timeout=60,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"systemd-analyze cannot run here: {exc}")
    if "Failed to initialize manager" in done.stderr or "Failed to lookup" in done.stderr:
        pytest.skip(f"systemd-analyze verify --user cannot run here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    # Unknown keys, bad quoting and bad escapes are only warnings naming the file.
    assert str(unit) not in done.stderr, done.stderr


# --- what gets baked in ------------------------------------------------------------------


def test_collector_env_keeps_settings_and_drops_secrets() -> None:
    environ = {
        "DEVLOG_CONFIG": "/c.toml",
        "DEVLOG_COLLECTOR_SERVER_URL": "http://devlog:3200",
        "DEVLOG_COLLECTOR_API_KEY": "dlk_secret",
        "DEVLOG_COLLECTOR_TOKEN": "t",
        "DEVLOG_DATABASE_URL": "postgresql://u:pw@h/db",
        "HOME": "/home/me",
    }
    assert collector_env(environ) == {"DEVLOG_COLLECTOR_SERVER_URL": "http://devlog:3200",
                                      "DEVLOG_CONFIG": "/c.toml"}


def test_collector_command_is_absolute_and_runs_collect() -> None:
    command = collector_command()
    assert os.path.isabs(command[0]) and command[-1] == "collect"
    assert command[1:] in (["collect"], ["-m", "app", "collect"])


# --- install / uninstall (systemd) -------------------------------------------------------


def test_install_writes_unit_under_xdg_config_home(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    xdg = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    lines = install_service(platform="linux", home=tmp_path / "home", start=False, env={})
    path = xdg / "systemd" / "user" / "devlog-collector.service"
    assert path.is_file()
    assert not (tmp_path / "home").exists()
    assert any(str(path) in line for line in lines)
    assert any("systemctl --user enable --now devlog-collector.service" in ln for ln in lines)
    assert any("journalctl --user -u devlog-collector -f" in line for line in lines)
    exec_start = parse_unit(path.read_text())["Service"]["ExecStart"]
    assert systemd_split(exec_start) == collector_command()


def test_install_defaults_to_dot_config_without_xdg(tmp_path: Path) -> None:
    install_service(platform="linux", home=tmp_path, start=False, env={})
    assert unit_path(tmp_path).is_file()


def test_install_does_not_bake_in_the_api_key(tmp_path: Path) -> None:
    env = {"DEVLOG_COLLECTOR_API_KEY": "dlk_topsecret", "DEVLOG_CONFIG": "/c.toml",
           "DEVLOG_COLLECTOR_SERVER_URL": "http://devlog:3200", "UNRELATED": "x"}
    install_service(platform="linux", home=tmp_path, start=False, env=env)
    text = unit_path(tmp_path).read_text()
    assert "dlk_topsecret" not in text and "API_KEY" not in text and "UNRELATED" not in text
    assert 'Environment="DEVLOG_CONFIG=/c.toml"' in text
    assert 'Environment="DEVLOG_COLLECTOR_SERVER_URL=http://devlog:3200"' in text


def test_install_reads_os_environ_by_default(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVLOG_COLLECTOR_API_KEY", "dlk_fromenv")
    monkeypatch.setenv("DEVLOG_CONFIG", "/from/env.toml")
    install_service(platform="linux", home=tmp_path, start=False)
    text = unit_path(tmp_path).read_text()
    assert "dlk_fromenv" not in text and "/from/env.toml" in text


def test_install_runs_systemctl_user_commands(tmp_path: Path, _isolated: Path) -> None:
    log = fake_tool(_isolated, "systemctl")
    lines = install_service(platform="linux", home=tmp_path, env={})
    assert calls(log) == ["--user daemon-reload",
                          "--user enable --now devlog-collector.service"]
    assert "ran: systemctl --user daemon-reload" in lines
    assert "ran: systemctl --user enable --now devlog-collector.service" in lines
    assert any("journalctl --user -u devlog-collector -f" in line for line in lines)


def test_reinstall_with_a_changed_unit_restarts_it(tmp_path: Path, _isolated: Path) -> None:
    log = fake_tool(_isolated, "systemctl")
    install_service(platform="linux", home=tmp_path, env={})
    install_service(platform="linux", home=tmp_path, env={})  # same unit: no restart
    assert "--user try-restart devlog-collector.service" not in calls(log)
    install_service(platform="linux", home=tmp_path, env={"DEVLOG_CONFIG": "/other.toml"})
    assert calls(log)[-1] == "--user try-restart devlog-collector.service"


def test_missing_systemctl_writes_the_unit_and_explains(tmp_path: Path) -> None:
    lines = install_service(platform="linux", home=tmp_path, env={})
    assert unit_path(tmp_path).is_file()
    text = "\n".join(lines)
    assert "systemctl not found" in text
    assert "systemctl --user enable --now devlog-collector.service" in text
    assert "devlog collect" in text


def test_failing_systemctl_does_not_crash(tmp_path: Path, _isolated: Path) -> None:
    log = fake_tool(_isolated, "systemctl", rc=1, stderr="Failed to connect to bus: No medium found")
    lines = install_service(platform="linux", home=tmp_path, env={})
    assert unit_path(tmp_path).is_file()
    assert calls(log) == ["--user daemon-reload"]  # stops at the first failure
    assert any("No medium found" in line and "by hand" in line for line in lines)


def test_uninstall_removes_the_unit_and_is_idempotent(tmp_path: Path, _isolated: Path) -> None:
    install_service(platform="linux", home=tmp_path, start=False, env={})
    wants = unit_path(tmp_path).parent / "default.target.wants" / "devlog-collector.service"
    wants.parent.mkdir()
    wants.symlink_to(unit_path(tmp_path))
    log = fake_tool(_isolated, "systemctl")
    lines = uninstall_service(platform="linux", home=tmp_path)
    assert not unit_path(tmp_path).exists() and not wants.is_symlink()
    assert calls(log) == ["--user disable --now devlog-collector.service",
                          "--user daemon-reload"]
    assert f"removed {unit_path(tmp_path)}" in lines
    again = uninstall_service(platform="linux", home=tmp_path)
    assert len(again) == 1 and "not installed" in again[0]
    assert len(calls(log)) == 2


def test_uninstall_without_systemctl_still_removes_the_file(tmp_path: Path) -> None:
    install_service(platform="linux", home=tmp_path, start=False, env={})
    lines = uninstall_service(platform="linux", home=tmp_path)
    assert not unit_path(tmp_path).exists()
    assert any("systemctl not found" in line for line in lines)


# --- launchd -----------------------------------------------------------------------------


def plist_path(home: Path) -> Path:
    return home / "Library" / "LaunchAgents" / "dev.devlog.collector.plist"


def test_launchd_install_and_uninstall(tmp_path: Path, _isolated: Path) -> None:
    log = fake_tool(_isolated, "launchctl")
    lines = install_service(platform="darwin", home=tmp_path,
                            env={"DEVLOG_COLLECTOR_API_KEY": "dlk_x", "DEVLOG_CONFIG": "/c"})
    path = plist_path(tmp_path)
    agent = plistlib.loads(path.read_bytes())
    assert agent["ProgramArguments"] == collector_command()
    assert agent["EnvironmentVariables"] == {"DEVLOG_CONFIG": "/c"}
    assert (tmp_path / "Library" / "Logs" / "devlog").is_dir()
    uid = os.getuid()
    assert calls(log) == [f"bootout gui/{uid}/dev.devlog.collector",
                          f"bootstrap gui/{uid} {path}"]
    assert f"ran: launchctl bootstrap gui/{uid} {path}" in lines
    assert any(line.startswith("logs: tail -f") for line in lines)

    uninstall_service(platform="darwin", home=tmp_path)
    assert not path.exists()
    assert calls(log)[-1] == f"bootout gui/{uid}/dev.devlog.collector"
    assert "not installed" in uninstall_service(platform="darwin", home=tmp_path)[0]


def test_launchd_falls_back_to_load(tmp_path: Path, _isolated: Path) -> None:
    log = fake_tool(_isolated, "launchctl", fail_on="bootstrap")
    lines = install_service(platform="darwin", home=tmp_path, env={})
    assert calls(log)[-1] == f"load -w {plist_path(tmp_path)}"
    assert f"ran: launchctl load -w {plist_path(tmp_path)}" in lines


def test_launchd_without_launchctl_explains(tmp_path: Path) -> None:
    lines = install_service(platform="darwin", home=tmp_path, env={})
    assert plist_path(tmp_path).is_file()
    assert any("launchctl not found" in line and "launchctl bootstrap" in line
               for line in lines)


# --- unsupported platforms ---------------------------------------------------------------


def test_windows_raises_with_a_schtasks_hint(tmp_path: Path) -> None:
    with pytest.raises(ServiceError) as info:
        install_service(platform="win32", home=tmp_path, start=False)
    message = str(info.value)
    assert "schtasks /Create /SC ONLOGON /TN devlog-collector /TR" in message
    assert "collect" in message
    with pytest.raises(ServiceError, match="schtasks"):
        uninstall_service(platform="win32", home=tmp_path)
    assert list(tmp_path.iterdir()) == [tmp_path / "bin"]  # nothing written


def test_unknown_platform_raises(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match="devlog collect"):
        install_service(platform="freebsd14", home=tmp_path, start=False)


def test_service_path_respects_only_absolute_xdg(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")
    assert service.service_path(platform="linux", home=tmp_path) == unit_path(tmp_path)
