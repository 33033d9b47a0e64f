"""The cost of one LLM call from its token buckets (rules in ``app.pricing``'s docstring).

``call_cost`` is what ingest runs per call (plain float arithmetic); ``SQL_COST`` is the same
formula over ``agent_event`` columns and a row of resolved rates, for ``devlog prices
recompute``. A test checks that both give the same figures.
"""

from __future__ import annotations

from app.pricing.record import Price, Rates

_PER = 1_000_000.0


def cost_with(rates: Rates, t_in: int, t_out: int, t_cr: int, t_cw: int, t_cw1h: int | None,
              t_re: int) -> float:
    """USD for these token counts at these rates."""
    w1h = 0
    if rates.cache_write_1h is not None and t_cw1h:
        w1h = min(t_cw1h, t_cw)
    r = 0
    if rates.reasoning is not None and t_re:
        r = min(t_re, t_out)
    total = (t_in * rates.input + t_cr * rates.cache_read + (t_cw - w1h) * rates.cache_write
             + (t_out - r) * rates.output)
    if w1h:
        total += w1h * rates.cache_write_1h  # type: ignore[operator]
    if r:
        total += r * rates.reasoning  # type: ignore[operator]
    return total / _PER


def call_cost(price: Price, t_in: int | None, t_out: int | None, t_cr: int | None,
              t_cw: int | None, t_cw1h: int | None, t_re: int | None) -> float:
    """USD for one call at ``price``, its tier chosen by the call's total prompt tokens."""
    t_in, t_out, t_cr, t_cw = t_in or 0, t_out or 0, t_cr or 0, t_cw or 0
    return cost_with(price.rates(t_in + t_cr + t_cw), t_in, t_out, t_cr, t_cw, t_cw1h, t_re or 0)


# The same over agent_event ``e`` and a row ``b`` of rates (p_in, p_out, p_cr, p_cw, p_cw1h,
# p_re; the last two NULL when the model has no such price), rounded like the column.
SQL_COST = """round(((
      coalesce(e.tokens_input, 0) * b.p_in
    + coalesce(e.tokens_cache_read, 0) * b.p_cr
    + (coalesce(e.tokens_cache_write, 0) - CASE WHEN b.p_cw1h IS NULL THEN 0 ELSE
          least(coalesce(e.tokens_cache_write_1h, 0), coalesce(e.tokens_cache_write, 0)) END)
      * b.p_cw
    + CASE WHEN b.p_cw1h IS NULL THEN 0 ELSE
          least(coalesce(e.tokens_cache_write_1h, 0), coalesce(e.tokens_cache_write, 0))
          * b.p_cw1h END
    + (coalesce(e.tokens_output, 0) - CASE WHEN b.p_re IS NULL THEN 0 ELSE
          least(coalesce(e.tokens_reasoning, 0), coalesce(e.tokens_output, 0)) END) * b.p_out
    + CASE WHEN b.p_re IS NULL THEN 0 ELSE
          least(coalesce(e.tokens_reasoning, 0), coalesce(e.tokens_output, 0)) * b.p_re END
  ) / 1000000.0)::numeric, 8)"""
