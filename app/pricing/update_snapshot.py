"""Regenerate ``app/pricing/snapshot.json`` from the ``genai-prices`` package (pydantic, MIT).

    pip install genai-prices            # only this script needs it; devlog does not
    python -m app.pricing.update_snapshot [--output FILE]

genai-prices ships its data as a 1.5 MB Python module built on pydantic; devlog keeps a compact
JSON copy of what it prices (tokens) instead, in the format ``devlog prices load`` reads
(``app/pricing/price_file.py``). What is kept of each model: its provider, id, name, match
clauses, and per dated price (``valid_from``) the token prices per million tokens — input,
output, cache read, cache write (5 m) and 1 h, reasoning — with their long-context tiers. Left
out: per-request fees (web searches, …), audio/image/video prices, request-specific variants
(batch, priority, "fast" modes) and time-of-day prices (DeepSeek off-peak: the standard price is
kept). Models with no token price at all are left out, so their names fall through to the next
match (e.g. the model's own provider).
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

SNAPSHOT = Path(__file__).with_name("snapshot.json")

# genai-prices price key -> ours
KEYS = {
    "input_mtok": "input", "output_mtok": "output", "cache_read_mtok": "cache_read",
    "cache_write_mtok": "cache_write", "cache_write_5m_mtok": "cache_write_5m",
    "cache_write_1h_mtok": "cache_write_1h", "output_reasoning_mtok": "reasoning",
}


def _clause(c: Any) -> dict:
    name = type(c).__name__
    if name == "ClauseOr":
        return {"or": [_clause(x) for x in c.or_]}
    if name == "ClauseAnd":
        return {"and": [_clause(x) for x in c.and_]}
    field = {"ClauseStartsWith": "starts_with", "ClauseEndsWith": "ends_with",
             "ClauseContains": "contains", "ClauseRegex": "regex", "ClauseEquals": "equals"}[name]
    return {field: getattr(c, field)}


def _num(d: Decimal) -> float | int:
    return int(d) if d == d.to_integral_value() else float(d)


def _prices(mp: Any, valid_from: date | None) -> dict | None:
    out: dict[str, Any] = {"valid_from": valid_from.isoformat() if valid_from else None}
    tiers: dict[int, dict[str, Any]] = {}
    for key, ours in KEYS.items():
        value = mp.__dict__.get(key)
        if value is None:
            continue
        if type(value).__name__ == "TieredPrices":
            out[ours] = _num(value.base)
            for tier in value.tiers:
                tiers.setdefault(tier.start, {"above": tier.start})[ours] = _num(tier.price)
        else:
            out[ours] = _num(value)
    if "input" not in out and "output" not in out:
        return None
    if tiers:
        out["tiers"] = [tiers[k] for k in sorted(tiers)]
    return out


def build() -> dict:
    from importlib.metadata import version

    from genai_prices.data import providers

    gp_version = version("genai-prices")
    providers_out, models_out = [], []
    for p in providers:
        providers_out.append({
            "id": p.id, "name": p.name,
            "model_match": _clause(p.model_match) if p.model_match else None,
            "provider_match": _clause(p.provider_match) if p.provider_match else None,
            "fallback": p.fallback_model_providers or [],
        })
        for m in p.models:
            dated = []
            if isinstance(m.prices, list):
                for i, cp in enumerate(m.prices):
                    kind = type(cp.constraint).__name__
                    if kind == "TimeOfDateConstraint":
                        continue  # off-peak hours: keep the standard price
                    start = cp.constraint.start_date if kind == "StartDateConstraint" and i else None
                    dated.append((start, cp.prices))
            else:
                dated.append((None, m.prices))
            prices = [x for x in (_prices(mp, start) for start, mp in dated) if x]
            if not prices:
                continue
            prices.sort(key=lambda x: x["valid_from"] or "")
            models_out.append({
                "provider": p.id, "model": m.id, "name": m.name, "match": _clause(m.match),
                "prices": prices,
            })
    return {
        "format": "devlog-prices/1",
        "source": f"genai-prices {gp_version}",
        "notice": (f"Prices from genai-prices {gp_version} "
                   "(https://github.com/pydantic/genai-prices), MIT License, "
                   "Copyright (c) Pydantic Services Inc. 2025 to present. Reduced to token "
                   "prices by app/pricing/update_snapshot.py."),
        "generated": date.today().isoformat(),
        "providers": providers_out,
        "models": models_out,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=SNAPSHOT)
    args = parser.parse_args()
    data = build()
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    # one model per line: diffs between snapshots stay readable
    text = text.replace(',{"provider":', ',\n{"provider":').replace('"models":[', '"models":[\n')
    text = text.replace(',{"id":', ',\n{"id":').replace('"providers":[', '"providers":[\n')
    args.output.write_text(text + "\n", encoding="utf-8")
    print(f"wrote {args.output}: {len(data['providers'])} providers, {len(data['models'])} models "
          f"({data['source']})")


if __name__ == "__main__":
    main()
