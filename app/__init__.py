"""devlog server: settings, database, ingest, GraphQL API, jobs and CLI."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("devlog")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+source"
