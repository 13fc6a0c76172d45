"""PAYHOOK_SMTP_URL parsing and the customer's message."""

from email import message_from_bytes
from email.header import decode_header, make_header
from types import SimpleNamespace

import pytest

from payhook.config import ConfigError
from payhook.effects.context import _mailer
from payhook.effects.email import compose
from payhook.effects.mailer import Mailer
from tests.conftest import make_settings

DEFAULT_FROM = "payhook@pay.example"


@pytest.mark.parametrize(("url", "expected"), [
    ("smtp://mail.example", ("mail.example", 25, False, False, DEFAULT_FROM, None, None)),
    ("smtp://127.0.0.1:2525?from=shop@example.com",
     ("127.0.0.1", 2525, False, False, "shop@example.com", None, None)),
    ("smtp+starttls://user%40x:p%3Ass@mail.example",
     ("mail.example", 587, False, True, DEFAULT_FROM, "user@x", "p:ss")),
    ("smtps://u:pw@mail.example:4650/",
     ("mail.example", 4650, True, False, DEFAULT_FROM, "u", "pw")),
])
def test_smtp_urls(url, expected):
    mailer = Mailer.from_url(url, DEFAULT_FROM)
    assert (mailer.hostname, mailer.port, mailer.use_tls, mailer.start_tls, mailer.sender,
            mailer.username, mailer.password) == expected
    assert "pw" not in repr(mailer) and "p:ss" not in repr(mailer)


@pytest.mark.parametrize("url", ["http://mail.example", "smtp://", "smtp://host/path",
                                 "smtp://host:notaport", "smtp://host?to=x",
                                 "smtp://host?from=a&from=b"])
def test_bad_smtp_urls(url):
    with pytest.raises(ValueError):
        Mailer.from_url(url, DEFAULT_FROM)


def test_a_bad_smtp_url_stops_the_worker_with_one_line_without_the_password(tmp_path):
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/p.db",
                             smtp_url="ftp://user:hunter2@mail.example")
    with pytest.raises(ConfigError, match="^PAYHOOK_SMTP_URL: ") as raised:
        _mailer(settings)
    assert "hunter2" not in str(raised.value)


def test_the_message_carries_the_link():
    session = SimpleNamespace(id="cs_1", customer_email="ada@example.com", customer_name="Ada",
                              customer_access_url="https://pay.example/access/cs_1?token=t.o.k",
                              customer_access_expires_at=None)
    wire = compose(session, "shop@example.com")
    assert b"\r\n" in wire and b"\n" not in wire.replace(b"\r\n", b"")  # CRLF line ends only
    message = message_from_bytes(wire)
    assert (message["From"], message["To"]) == ("shop@example.com", "ada@example.com")
    assert message["Subject"] == "Your payment is complete: your access link"
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8" and message["Date"] and message["Message-ID"]
    body = message.get_payload(decode=True).decode()
    assert "https://pay.example/access/cs_1?token=t.o.k" in body and body.startswith("Hello Ada,")


def test_text_and_headers_beyond_ascii_arrive_intact():
    session = SimpleNamespace(id="cs_1", customer_email="zoë@example.com", customer_name="Zoë",
                              customer_access_url="https://pay.example/access/cs_1?token=t",
                              customer_access_expires_at=None)
    wire = compose(session, "shop@example.com")
    assert wire.isascii()
    message = message_from_bytes(wire)
    assert str(make_header(decode_header(message["To"]))) == "zoë@example.com"
    assert message.get_payload(decode=True).decode().startswith("Hello Zoë,")


@pytest.mark.parametrize("sender", ["shop@example.com\r\nBcc: all@example.com", "a@b\nX: y"])
def test_a_line_break_in_a_header_is_refused(sender):
    session = SimpleNamespace(id="cs_1", customer_email="ada@example.com", customer_name=None,
                              customer_access_url="https://pay.example/access/cs_1?token=t",
                              customer_access_expires_at=None)
    with pytest.raises(ValueError, match="line break"):
        compose(session, sender)
