"""Error texts lose their credentials before they are stored or logged: URLs keep scheme and
host, credential-looking values and bearer tokens are replaced."""

import json
import logging
import sys

import pytest

from payhook.observability import JsonFormatter
from payhook.redaction import describe, redact

SECRET = "SECRETKEY123"


@pytest.mark.parametrize(("text", "kept"), [
    (f"404, message='Not Found', url='https://mainnet.infura.io/v3/{SECRET}'",
     "url='https://mainnet.infura.io/[redacted]'"),
    (f"smtp+starttls://mailer:{SECRET}@mail.example.com:587?from=a@b.example failed",
     "smtp+starttls://mail.example.com:587/[redacted] failed"),
    (f"POST https://shop.example/hook?token={SECRET}&x=1 failed",
     "POST https://shop.example/[redacted] failed"),
    (f"connect to postgresql+asyncpg://payhook:{SECRET}@db:5432/payhook",
     "postgresql+asyncpg://db:5432/[redacted]"),
    (f"URL('http://[::1]:8545/v3/{SECRET}')", "URL('http://[::1]:8545/[redacted]')"),
    (f"password={SECRET} api_key='{SECRET} x'; token={SECRET}&",
     "password=[redacted] api_key=[redacted]; token=[redacted]&"),
    (f"Authorization: Bearer sk_live_{SECRET}", "Authorization: Bearer [redacted]"),
    (f"authorization: BEARER {SECRET}", "authorization: BEARER [redacted]"),  # no URL, no '='
    (f"Basic {SECRET}", "Basic [redacted]"),
])
def test_credentials_are_removed_and_the_origin_kept(text, kept):
    redacted = redact(text)
    assert SECRET not in redacted
    assert kept in redacted


@pytest.mark.parametrize("text", [
    "KeyError: 'session_id'",
    'duplicate key value violates unique constraint "x" DETAIL: Key (id)=(cs_1) already exists',
    "Cannot connect to host 127.0.0.1:8545 ssl:default [Connect call failed]",
    "http://127.0.0.1:8545",
])
def test_text_without_credentials_is_unchanged(text):
    assert redact(text) == text


def test_describe_names_the_type_and_redacts_the_message():
    assert describe(ValueError(f"bad https://node.example/v3/{SECRET}")) == (
        "ValueError: bad https://node.example/[redacted]")
    assert describe(TimeoutError()) == "TimeoutError"


def test_the_log_formatter_redacts_messages_fields_and_tracebacks():
    try:
        try:
            raise ConnectionError(f"node https://mainnet.infura.io/v3/{SECRET} is down")
        except ConnectionError as inner:
            raise RuntimeError(f"retry with password={SECRET}") from inner
    except RuntimeError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("payhook.test", logging.ERROR, __file__, 1,
                               "disconnected from %s", (f"http://node/v3/{SECRET}",), exc_info)
    record.url = f"https://shop.example/hook?token={SECRET}"
    line = JsonFormatter().format(record)
    assert SECRET not in line
    entry = json.loads(line)
    assert entry["message"] == "disconnected from http://node/[redacted]"
    assert entry["url"] == "https://shop.example/[redacted]"
    assert "ConnectionError: node https://mainnet.infura.io/[redacted] is down" in \
        entry["exception"]
    assert "RuntimeError: retry with password=[redacted]" in entry["exception"]
