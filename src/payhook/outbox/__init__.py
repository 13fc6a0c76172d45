"""The transactional outbox: claim due rows, run their handler, settle — with retries, backoff,
a dead state and operators' replay. One code path, two runners (arq worker, embedded task)."""
