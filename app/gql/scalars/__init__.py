"""Custom scalars."""
