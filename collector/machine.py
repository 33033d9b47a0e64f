"""This machine's identity: a key stable across restarts, with host facts and its kind."""

from __future__ import annotations

import getpass
import os
import platform
import socket
import uuid
from collections.abc import Mapping
from pathlib import Path

from collector.wire import MachineInfo

_NAMESPACE = uuid.UUID("0b8e4c1e-6f0a-5c3d-8a59-6d616368696e")
CI_VARIABLES = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "JENKINS_URL", "CIRCLECI",
                "TF_BUILD", "TEAMCITY_VERSION")


def machine_kind(env: Mapping[str, str]) -> str:
    if env.get("CODESPACES") == "true":
        return "codespaces"
    if any(env.get(v) for v in CI_VARIABLES):
        return "ci"
    if env.get("SSH_CONNECTION") or env.get("SSH_CLIENT") or env.get("VSCODE_IPC_HOOK_CLI"):
        return "ssh"
    if Path("/.dockerenv").exists() or env.get("container"):
        return "container"
    return "local"


def _system_id() -> str:
    for candidate in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            text = Path(candidate).read_text().strip()
        except OSError:
            continue
        if text:
            return text
    return socket.gethostname()


def _username() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def this_machine(env: Mapping[str, str] | None = None) -> MachineInfo:
    """The key hashes the OS's machine id (or host name) with the user, so it survives restarts
    and host renames, and two users of one host are two machines."""
    env = os.environ if env is None else env
    user = _username()
    return MachineInfo(
        key=str(uuid.uuid5(_NAMESPACE, f"{_system_id()}:{user}")),
        hostname=socket.gethostname()[:255], username=user[:255],
        os=platform.system().lower() or None, os_version=platform.release()[:255] or None,
        arch=platform.machine() or None, kind=machine_kind(env),  # type: ignore[arg-type]
    )
