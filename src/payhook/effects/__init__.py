"""One module per side effect; the worker's handler registry is this table (data, not code).

Every handler is idempotent through a unique constraint or a compare-and-set, so at-least-once
delivery of outbox rows yields exactly-once effects. Each takes a claimed batch of its kind at
once; most write it set-based: a few statements for the lot, not a few per row.
"""

from collections.abc import Mapping

from payhook.domain import decisions
from payhook.effects import (
    access_links,
    api_keys,
    deliveries,
    email,
    invoices,
    notifications,
    onchain,
)
from payhook.effects.context import EffectContext
from payhook.outbox.drain import Handler, each

HANDLERS: Mapping[str, Handler[EffectContext]] = {
    decisions.INVOICE: invoices.create_invoices,
    decisions.API_KEY: api_keys.provision_keys,
    decisions.ACCESS_LINK: access_links.issue_links,
    decisions.EMAIL: email.send_access_emails,
    decisions.NOTIFY: notifications.notify,
    deliveries.DELIVER: deliveries.send,
    decisions.ONCHAIN_CHECK: each(onchain.check_transaction),  # a chain read per row, side by side
}

# Within one session's rows: the invoice and the link exist before the notification carries them.
ORDER = ((decisions.INVOICE, decisions.API_KEY, decisions.ACCESS_LINK), (decisions.NOTIFY,))
