"""The agent-log collector (runs on each developer machine).

Adapters per agent, discovery, tailing with cursors, a local SQLite outbox and the GraphQL
sender land here (issue #4). It never imports ``app``; the server imports only the wire contract.
"""
