"""The service layer: what the HTTP API and the CLI both do, inside a caller's transaction.

Functions here take an open connection and never commit; the entrypoint owns the transaction.
"""
