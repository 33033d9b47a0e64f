"""One module per agent. A new agent is a module here plus sample logs in tests/fixtures."""

from __future__ import annotations

from importlib import import_module

from collector.adapters.base import Adapter

# agent name on the wire -> "module:class"
REGISTRY = {
    "claude-code": "collector.adapters.claude_code:ClaudeCode",
    "codex": "collector.adapters.codex:Codex",
    "copilot": "collector.adapters.copilot:Copilot",
}


def adapter(name: str) -> Adapter:
    module, _, cls = REGISTRY[name].partition(":")
    return getattr(import_module(module), cls)()


def enabled_adapters(names: list[str]) -> dict[str, Adapter]:
    return {name: adapter(name) for name in REGISTRY if name in names}
