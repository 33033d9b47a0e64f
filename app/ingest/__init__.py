"""Ingest: ``submit(batch, principal)`` (``submit.py``) validates a wire batch
(``collector.wire``) event by event against its bounds (``bounds.py``), upserts its context,
COPies its events, keeps session rollups, and announces what was committed on the bus."""
