"""The mailer keeps its SMTP connections open (one while quiet, a few side by side under load),
and opens one again when the server closed it."""

import asyncio
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from payhook.effects.mailer import Mailer
from tests.smtp_inbox import Inbox, running_inbox


def message(to: str) -> tuple[str, bytes]:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "shop@payhook.test", to, "hello"
    mail.set_content("hi")
    return to, mail.as_bytes()


def connected(mailer: Mailer) -> list:
    return [link.client for link in mailer._pool.links if link.client is not None]


async def test_messages_sent_at_once_share_a_few_connections():
    with running_inbox() as inbox:
        mailer = Mailer.from_url(inbox.url, "payhook@payhook.test")
        try:
            await asyncio.gather(*(mailer.send(*message(f"{n}@shop.example")) for n in range(20)))
            assert 1 < len(connected(mailer)) <= len(mailer._pool.links)
        finally:
            await mailer.close()
        assert connected(mailer) == []
        assert sorted(m["To"] for m in inbox.messages()) == sorted(
            f"{n}@shop.example" for n in range(20))


async def test_one_connection_for_many_messages_and_a_reconnect():
    with running_inbox() as inbox:
        mailer = Mailer.from_url(inbox.url, "payhook@payhook.test")
        try:
            await mailer.send(*message("a@shop.example"))
            [first] = connected(mailer)
            await mailer.send(*message("b@shop.example"))
            assert connected(mailer) == [first]  # the same connection
            port = first.port
        finally:
            await mailer.close()
        assert [m["To"] for m in inbox.messages()] == ["a@shop.example", "b@shop.example"]

    # A server that went away and came back: the next message opens a new connection.
    later = Inbox()
    controller = Controller(later, hostname="127.0.0.1", port=port)
    mailer = Mailer.from_url(f"smtp://127.0.0.1:{port}", "payhook@payhook.test")
    controller.start()
    try:
        await mailer.send(*message("c@shop.example"))
        controller.stop()
        controller = Controller(later, hostname="127.0.0.1", port=port)
        controller.start()
        await mailer.send(*message("d@shop.example"))
    finally:
        await mailer.close()
        controller.stop()
    assert [m["To"] for m in later.messages()] == ["c@shop.example", "d@shop.example"]
