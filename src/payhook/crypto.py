"""Keys derived from ``PAYHOOK_SECRET_KEY``, one per purpose, and keyed hashes.

Each use (API-key hashing, access-link signing, …) gets its own key so that a leak or misuse of
one never forges another.
"""

import hashlib
import hmac


def derive_key(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode(), f"payhook/{purpose}".encode(), hashlib.sha256).digest()


def keyed_hash(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
