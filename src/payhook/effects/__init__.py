"""One module per side effect; the worker's handler registry is this table (data, not code).

Every handler is idempotent through a unique constraint or a compare-and-set, so at-least-once
delivery of outbox rows yields exactly-once effects. Most take a claimed batch of their kind at
once and write it set-based: a few statements for the lot, not a few per row.
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
from payhook.outbox.drain import Batched, Handler

HANDLERS: Mapping[str, Handler | Batched] = {
    decisions.INVOICE: Batched(invoices.create_invoices),
    decisions.API_KEY: Batched(api_keys.provision_keys),
    decisions.ACCESS_LINK: Batched(access_links.issue_links),
    decisions.EMAIL: Batched(email.send_access_emails),
    decisions.NOTIFY: Batched(notifications.notify),
    deliveries.DELIVER: Batched(deliveries.send),
    decisions.ONCHAIN_CHECK: onchain.check_transaction,  # one chain read per row: per row
}

# Within one session's rows: the invoice and the link exist before the notification carries them.
ORDER = ((decisions.INVOICE, decisions.API_KEY, decisions.ACCESS_LINK), (decisions.NOTIFY,))
