"""The mailer keeps one SMTP connection open, and opens it again when the server closed it."""

from email.message import EmailMessage

from aiosmtpd.controller import Controller

from payhook.effects.email import Mailer
from tests.smtp_inbox import Inbox, running_inbox


def message(to: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "shop@payhook.test", to, "hello"
    mail.set_content("hi")
    return mail


async def test_one_connection_for_many_messages_and_a_reconnect():
    with running_inbox() as inbox:
        mailer = Mailer.from_url(inbox.url, "payhook@payhook.test")
        try:
            await mailer.send(message("a@shop.example"))
            first = mailer._link.client
            await mailer.send(message("b@shop.example"))
            assert mailer._link.client is first  # the same connection
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
        await mailer.send(message("c@shop.example"))
        controller.stop()
        controller = Controller(later, hostname="127.0.0.1", port=port)
        controller.start()
        await mailer.send(message("d@shop.example"))
    finally:
        await mailer.close()
        controller.stop()
    assert [m["To"] for m in later.messages()] == ["c@shop.example", "d@shop.example"]
