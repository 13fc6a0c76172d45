"""A checkout's shortcut to :mod:`payhook.worker` (``arq worker.WorkerSettings``, ``python -m
worker``). Not in the wheel: an installed top-level ``worker`` would shadow a user's own."""

from typing import Any

import payhook.worker


def __getattr__(name: str) -> Any:
    # Looked up when asked for, so importing this shim reads no setting either.
    return getattr(payhook.worker, name)
