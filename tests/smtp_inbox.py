"""A real SMTP peer for tests: aiosmtpd on a free loopback port, keeping every message."""

import email
import email.message
import email.policy
from collections.abc import Iterator
from contextlib import contextmanager

from aiosmtpd.controller import Controller

from tests.e2e.conftest import free_port


class Inbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.envelopes: list = []
        self.url = ""

    async def handle_DATA(self, _server, _session, envelope):
        self.envelopes.append(envelope)
        return "250 OK"

    def messages(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(envelope.original_content, policy=email.policy.default)
                for envelope in self.envelopes]


@contextmanager
def running_inbox() -> Iterator[Inbox]:
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.url = f"smtp://127.0.0.1:{controller.port}?from=shop@payhook.test"
    try:
        yield handler
    finally:
        controller.stop()
