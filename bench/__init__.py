"""Benchmarks: scripts that print numbers (``make bench-ingest``, ``make bench-worker``), not
tests; their shared pieces are in :mod:`bench.common`."""
