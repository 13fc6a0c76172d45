"""One module per side effect; the worker's handler registry is this table (data, not code).

Every handler is idempotent through a unique constraint, so at-least-once delivery of outbox
rows yields exactly-once effects.
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
from payhook.outbox.drain import Handler

HANDLERS: Mapping[str, Handler] = {
    decisions.INVOICE: invoices.create_invoice,
    decisions.API_KEY: api_keys.provision_key,
    decisions.ACCESS_LINK: access_links.issue_link,
    decisions.EMAIL: email.send_access_email,
    decisions.NOTIFY: notifications.notify,
    deliveries.DELIVER: deliveries.send,
    decisions.ONCHAIN_CHECK: onchain.check_transaction,
}

# Within one session's rows: the invoice and the link exist before the notification carries them.
ORDER = ((decisions.INVOICE, decisions.API_KEY, decisions.ACCESS_LINK), (decisions.NOTIFY,))
