"""Credentials out of every error text that is stored or logged.

Errors carry URLs that hold secrets: the node provider's key in ``PAYHOOK_WEB3_RPC_URL``'s
path (``https://mainnet.infura.io/v3/<key>``), a password in ``PAYHOOK_SMTP_URL``, a merchant's
token in its endpoint's query. So every URL keeps only its scheme and host (and port), and
``password=…``-, ``key=…``- or ``token=…``-looking pairs and bearer credentials lose their
value — in an outbox row's ``last_error``, a delivery attempt's error, and every log line.
"""

import re

REDACTED = "[redacted]"

# scheme://[userinfo@]host[:port][/path][?query][#fragment], up to a space or a quote.
_URL = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([^\s'\"<>()]+)")
_CREDENTIAL = re.compile(
    r"(?i)\b([\w.-]*(?:password|passwd|pwd|secret|token|key|auth|signature|credential)"
    r"[\w.-]*)=(\"[^\"]*\"|'[^']*'|[^\s&,;'\"]+)")
_BEARER = re.compile(r"(?i)\b(bearer|basic)(\s+)[\w.~+/=-]{8,}")


def redact(text: str) -> str:
    """``text`` with URLs cut to scheme and host, and credential values replaced."""
    if "://" not in text and "=" not in text:  # no URL and no pair: at most a bearer credential
        lowered = text.lower()
        if "bearer" not in lowered and "basic" not in lowered:
            return text  # every log line's fields pass here: most hold none of the three
    text = _URL.sub(_origin, text)
    text = _CREDENTIAL.sub(lambda found: f"{found[1]}={REDACTED}", text)
    return _BEARER.sub(lambda found: f"{found[1]}{found[2]}{REDACTED}", text)


def describe(error: BaseException) -> str:
    """An error as stored text: its type and its redacted message."""
    message = str(error)
    return f"{type(error).__name__}: {redact(message)}" if message else type(error).__name__


def _origin(found: re.Match[str]) -> str:
    rest = found[2]
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    host = authority.rpartition("@")[2]
    cut = host != rest
    return f"{found[1]}{host}/{REDACTED}" if cut else f"{found[1]}{host}"
