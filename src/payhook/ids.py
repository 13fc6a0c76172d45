"""Opaque, prefixed, unguessable identifiers (Stripe style: ``cs_…``)."""

import os
import re
import string

ALPHABET = string.digits + string.ascii_letters
_LENGTH = 25  # base-62 digits: 148 random bits, above the contract's 128
# A random byte below 248 (4 × 62) is one uniform base-62 digit, its value mod 62; a byte of
# 248 or more is dropped (rejection sampling: no digit more likely than another). Both steps are
# one bytes.translate, so an id costs about a microsecond — ids are made for every row.
_DIGIT_OF = bytes(ord(ALPHABET[byte % 62]) for byte in range(256))  # 248+: dropped
_DROPPED = bytes(range(248, 256))
_DRAW = 32  # bytes drawn at a time: 25 of 32 survive but once in about 10**9 draws
# The operating system's random bytes, fetched 4 KiB at a time: a system call per id cost more
# than the id (a web request makes five). Each byte is used once; a forked child starts with an
# empty buffer, so it never makes its parent's ids.
_FETCH = 4096


class _Pool:
    buffer = b""
    at = 0

    @classmethod
    def draw(cls) -> bytes:
        if cls.at + _DRAW > len(cls.buffer):
            cls.buffer, cls.at = os.urandom(_FETCH), 0
        drawn = cls.buffer[cls.at:cls.at + _DRAW]
        cls.at += _DRAW
        return drawn

    @classmethod
    def forget(cls) -> None:
        cls.buffer, cls.at = b"", 0


os.register_at_fork(after_in_child=_Pool.forget)


def _digits() -> str:
    digits = b""
    while len(digits) < _LENGTH:
        digits += _Pool.draw().translate(_DIGIT_OF, _DROPPED)
    return digits[:_LENGTH].decode()


def new_id(prefix: str) -> str:
    """A fresh identifier such as ``cs_3kT…``: 25 uniformly random base-62 digits."""
    return f"{prefix}_{_digits()}"


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
