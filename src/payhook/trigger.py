"""``payhook trigger``: a provider's event for an existing session, signed the way that provider
signs it (like ``stripe trigger``), so the whole webhook path can be tried without the provider.

The body says what the session says (amount, currency, mode), and every event gets a fresh id:
triggering twice sends two events, not a duplicate. Each provider module makes its own body
(``sample``) and headers (``sign``).
"""

import json
import time
from dataclasses import dataclass

from payhook import providers
from payhook.providers.base import Session

__all__ = ["Session", "Signed", "build"]


@dataclass(frozen=True)
class Signed:
    raw: bytes
    headers: dict[str, str]


def build(provider: str, session: Session, secret: str, *, event_type: str | None = None,
          tx_hash: str | None = None, now: int | None = None) -> Signed:
    """The raw body and headers of ``event_type`` (the provider's default if not given),
    signed with ``secret`` at ``now``; ``tx_hash`` is the transaction a web3 event names."""
    spec = providers.get(provider)
    stamp = int(time.time()) if now is None else now
    raw = json.dumps(spec.sample(session, event_type or spec.default_event, stamp,
                                 tx_hash)).encode()
    return Signed(raw=raw, headers={**spec.sign(raw, secret, stamp),
                                    "Content-Type": "application/json"})
