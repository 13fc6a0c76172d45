"""Keys derived from ``PAYHOOK_SECRET_KEY``, one per purpose, and keyed hashes.

Each use (API-key hashing, access-link signing, …) gets its own key so that a leak or misuse of
one never forges another.
"""

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class Unsealable(Exception):
    """A sealed value does not open: sealed under another ``PAYHOOK_SECRET_KEY``, or damaged.
    The message never quotes the sealed bytes."""


def derive_key(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode(), f"payhook/{purpose}".encode(), hashlib.sha256).digest()


def keyed_hash(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


class Sealer:
    """Authenticated encryption (AES-256-GCM) for secrets we must read back later: a webhook
    endpoint's signing secret, an auto-provisioned key until its one reveal."""

    NONCE_BYTES = 12

    def __init__(self, secret: str, purpose: str = "sealed-secrets"):
        self._aead = AESGCM(derive_key(secret, purpose))

    def seal(self, plaintext: str) -> bytes:
        nonce = os.urandom(self.NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext.encode(), None)

    def open(self, sealed: bytes) -> str:
        nonce, ciphertext = sealed[: self.NONCE_BYTES], sealed[self.NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, ciphertext, None).decode()
        except (InvalidTag, ValueError) as error:  # ValueError: a short nonce, not UTF-8
            raise Unsealable(f"a sealed secret does not open ({type(error).__name__}); "
                             "was PAYHOOK_SECRET_KEY changed?") from None
