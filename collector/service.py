"""Install or uninstall ``devlog collect`` as a per-user background service.

* Linux: a systemd **user** unit ``devlog-collector.service`` in
  ``$XDG_CONFIG_HOME/systemd/user/`` (default ``~/.config/systemd/user/``), enabled with
  ``systemctl --user enable --now``; logs in ``journalctl --user -u devlog-collector -f``.
* macOS: a launchd agent ``dev.devlog.collector`` in ``~/Library/LaunchAgents/``, loaded with
  ``launchctl bootstrap gui/<uid>`` (``launchctl load -w`` as a fall-back); logs in
  ``~/Library/Logs/devlog/``.
* Windows: not automated; :class:`ServiceError` says how to do it with Task Scheduler.

The service runs ``<devlog executable> collect`` (or ``<python> -m app collect``). Only the
environment variables that configure the collector (``DEVLOG_CONFIG``, ``DEVLOG_COLLECTOR_*``)
are baked into the unit, never secrets: the API key belongs in the config file. When the service
manager is missing or fails (no user session bus in a container, say), the file is still written
and the returned lines say what to run by hand. Nothing here raises for that; it only raises
:class:`ServiceError` for an unsupported platform or an unusable command line.
"""

from __future__ import annotations

import os
import plistlib
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "LAUNCHD_LABEL",
    "SYSTEMD_UNIT",
    "ServiceError",
    "collector_command",
    "collector_env",
    "install_service",
    "render_launchd_plist",
    "render_systemd_unit",
    "service_path",
    "uninstall_service",
]

SYSTEMD_UNIT = "devlog-collector.service"
LAUNCHD_LABEL = "dev.devlog.collector"
JOURNAL_HINT = "journalctl --user -u devlog-collector -f"
_COMMAND_TIMEOUT = 30.0

# Words that need no quoting in ExecStart= (no whitespace, quotes, backslash, '%', '$', ';').
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_@+=:,./-]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")
_C_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


class ServiceError(Exception):
    """The service cannot be installed here (platform, command line); the message says why."""


# --- what to run -------------------------------------------------------------------------


def collector_command() -> list[str]:
    """The absolute command line of the collector: ``devlog collect`` or ``python -m app collect``.

    The ``devlog`` script next to the running interpreter (same virtualenv) wins over the
    first one on ``PATH``, so the service runs the installation that installed it.
    """
    beside = Path(sys.executable).parent / ("devlog.exe" if os.name == "nt" else "devlog")
    found = str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None
    found = found or shutil.which("devlog")
    if found:
        return [os.path.abspath(found), "collect"]
    return [os.path.abspath(sys.executable), "-m", "app", "collect"]


def collector_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of ``environ`` (default ``os.environ``) to bake into the service.

    ``DEVLOG_CONFIG`` and ``DEVLOG_COLLECTOR_*``, minus anything that looks like a secret
    (``DEVLOG_COLLECTOR_API_KEY``, tokens, passwords): a unit file is not a secret store.
    """
    source = os.environ if environ is None else environ
    return {
        name: value
        for name, value in sorted(source.items())
        if (name == "DEVLOG_CONFIG" or name.startswith("DEVLOG_COLLECTOR_"))
        and not any(word in name.upper() for word in _SECRET_WORDS)
    }


# --- rendering ---------------------------------------------------------------------------


def _systemd_escape(text: str) -> str:
    """Escape ``text`` for a double-quoted systemd item (systemd.syntax(7) "Quoting")."""
    out = []
    for char in text:
        if char in _C_ESCAPES:
            out.append(_C_ESCAPES[char])
        elif char == "%":  # specifiers are expanded in ExecStart= and Environment=
            out.append("%%")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return "".join(out)


def _exec_word(word: str) -> str:
    """One ExecStart= argument: plain when safe, else double-quoted; ``$`` doubled (no expansion)."""
    if _PLAIN_WORD.fullmatch(word):
        return word
    return '"' + _systemd_escape(word).replace("$", "$$") + '"'


def render_systemd_unit(exec_args: list[str], env: dict[str, str]) -> str:
    """The text of the systemd user unit ``devlog-collector.service`` running ``exec_args``.

    ``env`` is written as is (one ``Environment=`` line each): filter it with
    :func:`collector_env` first.
    """
    if not exec_args or not os.path.isabs(exec_args[0]) or exec_args[0][0] in "@-:+!":
        raise ServiceError(f"the service's executable must be an absolute path: {exec_args!r}")
    for name in env:
        if not _ENV_NAME.fullmatch(name):
            raise ServiceError(f"not a valid environment variable name for systemd: {name!r}")
    environment = [f'Environment="{_systemd_escape(f"{k}={v}")}"' for k, v in env.items()]
    lines = [
        "# Written by devlog (collector/service.py); reinstalling overwrites it.",
        "[Unit]",
        "Description=devlog collector (sends AI coding agents' logs to the devlog server)",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        "ExecStart=" + " ".join(_exec_word(word) for word in exec_args),
        "Restart=on-failure",
        "RestartSec=5",
        # The collector flushes its outbox on SIGTERM.
        "KillSignal=SIGTERM",
        "TimeoutStopSec=15",
        "Nice=10",
        "MemoryHigh=200M",
        "# No API key here: it belongs in the [collector] table of the devlog config file",
        "# (`devlog config path` prints where it is).",
        *environment,
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
    ]
    return "\n".join(lines)


def render_launchd_plist(exec_args: list[str], env: dict[str, str], log_dir: Path) -> str:
    """The XML plist of the launchd agent ``dev.devlog.collector`` running ``exec_args``."""
    agent: dict[str, object] = {
        "Label": LAUNCHD_LABEL,
        "ProgramArguments": list(exec_args),
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ProcessType": "Background",
        "StandardOutPath": str(log_dir / "collector.log"),
        "StandardErrorPath": str(log_dir / "collector.err.log"),
    }
    if env:
        agent["EnvironmentVariables"] = dict(env)
    return plistlib.dumps(agent, fmt=plistlib.FMT_XML).decode("utf-8")


# --- install / uninstall -----------------------------------------------------------------


def _kind(platform: str | None) -> str:
    platform = platform or sys.platform
    if platform.startswith("linux"):
        return "systemd"
    if platform == "darwin":
        return "launchd"
    if platform in ("win32", "cygwin", "msys"):
        tr = subprocess.list2cmdline(collector_command()).replace('"', '\\"')
        raise ServiceError(
            "installing the collector as a service is not automated on Windows; run it at logon "
            f'with Task Scheduler:\n  schtasks /Create /SC ONLOGON /TN devlog-collector /TR "{tr}"'
            "\nand remove it with: schtasks /Delete /TN devlog-collector /F"
        )
    raise ServiceError(
        f"no supported service manager on {platform!r}: start `devlog collect` at login yourself"
    )


def service_path(*, platform: str | None = None, home: Path | None = None) -> Path:
    """Where the unit (Linux) or agent plist (macOS) is written."""
    home = Path.home() if home is None else home
    if _kind(platform) == "launchd":
        return home / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    config = Path(xdg) if os.path.isabs(xdg) else home / ".config"
    return config / "systemd" / "user" / SYSTEMD_UNIT


def _run(args: list[str]) -> str | None:
    """Run a service-manager command; None when it worked, else why it did not."""
    if shutil.which(args[0]) is None:
        return f"{args[0]} not found"
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=_COMMAND_TIMEOUT,
                              check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        return f"exit status {done.returncode}" + (f": {detail[-1]}" if detail else "")
    return None


def _run_all(commands: list[list[str]], lines: list[str], advice: str) -> bool:
    """Run ``commands`` in order, recording each; stop at the first failure with ``advice``."""
    for args in commands:
        error = _run(args)
        shown = " ".join(args)
        if error is not None:
            lines.append(f"could not run `{shown}` ({error}); {advice}")
            return False
        lines.append(f"ran: {shown}")
    return True


def _write(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` atomically; True if the content changed from a previous one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = path.read_text(encoding="utf-8") if path.is_file() else None
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return previous is not None and previous != text


def install_service(
    *,
    platform: str | None = None,
    home: Path | None = None,
    start: bool = True,
    env: Mapping[str, str] | None = None,
) -> list[str]:
    """Write the collector's service file and (``start``) enable and start it.

    ``env`` is the environment to take the collector's settings from (default ``os.environ``);
    only :func:`collector_env` of it is baked in. Returns human-readable lines of what was done.
    Raises :class:`ServiceError` on Windows and other unsupported platforms.
    """
    kind = _kind(platform)
    home = Path.home() if home is None else home
    path = service_path(platform=platform, home=home)
    command, baked = collector_command(), collector_env(env)
    lines: list[str] = []
    if kind == "systemd":
        changed = _write(path, render_systemd_unit(command, baked))
        lines.append(f"wrote {path} (runs: {' '.join(command)})")
        commands = [["systemctl", "--user", "daemon-reload"],
                    ["systemctl", "--user", "enable", "--now", SYSTEMD_UNIT]]
        if changed:  # enable --now leaves an already running old version alone
            commands.append(["systemctl", "--user", "try-restart", SYSTEMD_UNIT])
        by_hand = " && ".join(" ".join(c) for c in commands[:2])
        if not start:
            lines.append(f"not started; to start it now and at every login: {by_hand}")
        elif _run_all(commands, lines, f"in your login session, run by hand: {by_hand} "
                      "(or just run `devlog collect`)"):
            lines.append("to keep it running while you are logged out: "
                         f"loginctl enable-linger {_username()}")
        lines.append(f"logs: {JOURNAL_HINT}")
        return lines

    log_dir = home / "Library" / "Logs" / "devlog"
    log_dir.mkdir(parents=True, exist_ok=True)
    _write(path, render_launchd_plist(command, baked, log_dir))
    lines.append(f"wrote {path} (runs: {' '.join(command)})")
    domain = f"gui/{os.getuid()}"
    by_hand = f"launchctl bootstrap {domain} {path}"
    if not start:
        lines.append(f"not started; to start it now and at every login: {by_hand}")
    else:
        _run(["launchctl", "bootout", f"{domain}/{LAUNCHD_LABEL}"])  # reinstall: drop the old one
        if _run(["launchctl", "bootstrap", domain, str(path)]) is None:
            lines.append(f"ran: {by_hand}")
        else:
            _run_all([["launchctl", "load", "-w", str(path)]], lines,
                     f"run by hand: {by_hand} (or just run `devlog collect`)")
    lines.append(f"logs: tail -f {log_dir / 'collector.log'} {log_dir / 'collector.err.log'}")
    return lines


def uninstall_service(
    *, platform: str | None = None, home: Path | None = None, stop: bool = True
) -> list[str]:
    """Stop and disable the collector's service (``stop``) and remove its file. Idempotent."""
    kind = _kind(platform)
    path = service_path(platform=platform, home=home)
    if not path.exists():
        return [f"the devlog collector service is not installed (no {path})"]
    lines: list[str] = []
    if kind == "systemd":
        if stop:
            _run_all([["systemctl", "--user", "disable", "--now", SYSTEMD_UNIT]], lines,
                     f"if it is still running: systemctl --user stop {SYSTEMD_UNIT}")
        path.unlink()
        lines.append(f"removed {path}")
        wanted = path.parent / "default.target.wants" / SYSTEMD_UNIT
        if wanted.is_symlink():  # left behind when systemctl could not disable it
            wanted.unlink()
            lines.append(f"removed {wanted}")
        if stop:
            _run_all([["systemctl", "--user", "daemon-reload"]], lines,
                     "run by hand: systemctl --user daemon-reload")
        return lines
    if stop:
        domain = f"gui/{os.getuid()}"
        if _run(["launchctl", "bootout", f"{domain}/{LAUNCHD_LABEL}"]) is None:
            lines.append(f"ran: launchctl bootout {domain}/{LAUNCHD_LABEL}")
        else:
            _run_all([["launchctl", "unload", "-w", str(path)]], lines,
                     "it may not have been running")
    path.unlink()
    lines.append(f"removed {path}")
    return lines


def _username() -> str:
    return os.environ.get("USER") or os.environ.get("LOGNAME") or "$USER"
