"""What a merchant's endpoint receives: the event types, its filter, and when it gives up.

Pure rules, no I/O: which events an endpoint's ``enabled_events`` lets through, and whether an
endpoint failing since a given time has failed long enough to be disabled.
"""

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from payhook.domain.decisions import FAILED, PAID

TEST = "webhook_endpoint.test"
EVENT_TYPES = (PAID, FAILED, TEST)
EVERY = "*"  # enabled_events ["*"]: every type, those added later included
DISABLED_REASONS = ("gone", "failing", "merchant")  # a 410; continuous failure; the merchant
# A delivery: not sent yet (or held) · delivered · failed, retrying · dead, no tries left.
DELIVERY_STATUSES = ("pending", "delivered", "failed", "dead")


def accepts(enabled_events: Sequence[str], event_type: str) -> bool:
    return EVERY in enabled_events or event_type in enabled_events


def failed_too_long(failing_since: datetime | None, now: datetime, limit: timedelta) -> bool:
    """Every try since ``failing_since`` failed, and that has lasted ``limit``."""
    return failing_since is not None and now - failing_since >= limit


def notified_event_id(entry_id: str) -> str:
    """The event a ``merchant.notify`` outbox row makes: derived from the row, so a re-run (or
    a replay) of the row is the same event, which its endpoints already have."""
    return "evt_" + entry_id.split("_", 1)[1]


def wire(body: dict[str, Any]) -> str:
    """An event's body as the bytes a delivery POSTs (compact JSON, ASCII-escaped)."""
    return _compact(body)


# One encoder for every body (json.dumps with an option builds a new one per call).
_compact = json.JSONEncoder(separators=(",", ":")).encode
