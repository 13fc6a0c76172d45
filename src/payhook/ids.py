"""Opaque, prefixed, unguessable identifiers (Stripe style: ``cs_…``)."""

import re
import secrets
import string

ALPHABET = string.digits + string.ascii_letters
_RANDOM_BYTES = 18  # 144 bits, above the contract's 128
_LENGTH = 25  # enough base-62 digits for 2**144


def _base62(number: int) -> str:
    digits = []
    for _ in range(_LENGTH):
        number, rest = divmod(number, 62)
        digits.append(ALPHABET[rest])
    return "".join(reversed(digits))


def new_id(prefix: str) -> str:
    """A fresh identifier such as ``cs_3kT…`` with 144 random bits."""
    return f"{prefix}_{_base62(int.from_bytes(secrets.token_bytes(_RANDOM_BYTES), 'big'))}"


_ANY_ID = re.compile(rf"[a-z]{{1,8}}_[0-9A-Za-z]{{{_LENGTH}}}")


def has_prefix(value: str, prefix: str) -> bool:
    """Whether ``value`` looks like an id of this kind (cheap pre-check before a lookup)."""
    body = value.removeprefix(f"{prefix}_")
    return body != value and len(body) == _LENGTH and all(c in ALPHABET for c in body)


def is_id(value: str) -> bool:
    """Whether ``value`` looks like an id of any kind: ``<prefix>_`` and the exact body form."""
    return _ANY_ID.fullmatch(value) is not None


def pattern(prefix: str) -> str:
    """The JSON Schema pattern of an id of this kind."""
    return f"^{prefix}_[0-9A-Za-z]{{{_LENGTH}}}$"
