"""Benchmarks: scripts that print numbers (``make bench-ingest``), not tests."""
