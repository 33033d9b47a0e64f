"""Model prices and the cost of LLM calls.

- ``match.py``: match clauses (equals, starts_with, regex, …) and model-name normalisation;
- ``record.py``: a dated price (``Price``) and one model's prices over time (``PricedModel``);
- ``cost.py``: the cost of one call from its token buckets (the rules below);
- ``book.py``: ``PriceBook``, every model by provider with name resolution, and the process-wide
  cache ingest reads (``current()``, refreshed when ``model_price`` changes);
- ``price_file.py``: the JSON price-file format (the shipped ``snapshot.json`` and files given to
  ``devlog prices load``) and its validation;
- ``update_snapshot.py``: regenerates ``snapshot.json`` from the ``genai-prices`` package.

Cost rules (prices in USD per million tokens; one call at a time, at the price valid at its
timestamp):

- ``input`` at the input price; ``cache_read`` at the cache-read price (input price if none);
- ``cache_write``: the 1 h part (``cache_write_1h``, when known and the model has a 1 h price) at
  that price, the rest at the 5 m / default cache-write price (input price if none);
- ``output`` includes reasoning for every agent (Anthropic's and OpenAI's ``output_tokens`` count
  thinking; Codex reports ``reasoning_output_tokens`` inside ``output_tokens``, and the adapter
  keeps ``output = output_tokens``): reasoning is a breakdown, charged once, at the output price —
  or, for the rare model with its own reasoning price, ``reasoning`` at that price and
  ``output - reasoning`` at the output price;
- long-context tiers: a tier applies to every bucket of the call once the call's total prompt
  tokens (input + cache read + cache write) are above its threshold.
"""
