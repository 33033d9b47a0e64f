"""Ingest: validate a wire batch (collector.wire), upsert its context, COPY its events, keep
session rollups, and announce what was committed on the bus."""
