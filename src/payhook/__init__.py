"""payhook: payment sessions, verified provider webhooks and a transactional outbox."""

__version__ = "0.1.0"
