"""The Host allow-list: which names the server answers to (against DNS rebinding).

A web page on ``attacker.example`` can make its name resolve to 127.0.0.1; the browser then
lets that page read whatever the loopback server answers, since it looks same-origin. The page
cannot change the ``Host`` header its browser sends (``attacker.example``), so the server refuses
names it was not told about.

* Listening on loopback: ``localhost``, ``127.0.0.1``, ``[::1]``, the listen address itself, and
  ``DEVLOG_ALLOWED_HOSTS``.
* Listening beyond loopback (a team server, ``0.0.0.0``): every request but ``health`` needs an
  API key there, which a rebound page does not have, so any name is accepted — unless
  ``DEVLOG_ALLOWED_HOSTS`` is set, and then only those names (and the loopback ones, for local
  health checks) are.

Entries are host names or addresses (a port is ignored: the port is not part of the attack),
``*.example.com`` for a domain's sub-names, or ``*`` for any name.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.access.policy import is_loopback
from app.settings import Settings

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
_WILDCARD_BINDS = ("", "0.0.0.0", "::", "[::]")


def hostname(value: str) -> str:
    """The name part of a Host header or an allow-list entry, lowercased: ``[::1]:3200`` →
    ``[::1]``, ``Example.COM.:80`` → ``example.com``; a bare IPv6 address gets its brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[:end + 1] if end > 0 else value
    if value.count(":") > 1:  # a bare IPv6 address (an allow-list entry, a listen address)
        return f"[{value}]"
    name, sep, port = value.rpartition(":")
    if sep and port.isdigit():
        value = name
    return value[:-1] if value.endswith(".") else value


@dataclass(frozen=True, slots=True)
class HostPolicy:
    any_host: bool
    names: frozenset[str]
    suffixes: tuple[str, ...]  # ".example.com" for "*.example.com"

    def allows(self, host_header: str | None) -> bool:
        if self.any_host or host_header is None:  # no Host: HTTP/1.0, never a browser
            return True
        name = hostname(host_header)
        return name in self.names or any(name.endswith(s) for s in self.suffixes)


def configured(settings: Settings) -> list[str]:
    """DEVLOG_ALLOWED_HOSTS as a list (a comma- or space-separated string, or a TOML list)."""
    value = settings.allowed_hosts
    items = value.replace(",", " ").split() if isinstance(value, str) else value
    return [i.strip() for i in items if i.strip()]


def policy_for(settings: Settings) -> HostPolicy:
    extra = configured(settings)
    if not is_loopback(settings.host) and not extra:
        return HostPolicy(any_host=True, names=frozenset(), suffixes=())
    names = set(LOOPBACK_NAMES)
    if settings.host.strip().lower() not in _WILDCARD_BINDS:
        names.add(hostname(settings.host))
    suffixes: list[str] = []
    for entry in extra:
        entry = entry.strip().lower()
        if entry == "*":
            return HostPolicy(any_host=True, names=frozenset(), suffixes=())
        if entry.startswith("*."):
            suffixes.append(hostname(entry[1:]))
        else:
            names.add(hostname(entry))
    return HostPolicy(any_host=False, names=frozenset(names), suffixes=tuple(suffixes))
