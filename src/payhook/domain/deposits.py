"""Deposit addresses: every crypto session's own address, derived from the merchant's watch-only
account key (``PAYHOOK_WEB3_XPUB``, an ``xpub…`` at ``m/44'/60'/<account>'``) as the BIP-32
non-hardened child ``…/0/<index>``, so the merchant's wallet holds every key and payhook none.

BIP-32 is bip-utils' (no elliptic-curve code of ours). bip-utils takes a few hundred
milliseconds to import, so it is imported only when a key is parsed: a payhook without crypto
never pays for it.
"""

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

ACCOUNT_DEPTH = 3  # m / 44' / 60' / account'
EXTERNAL_CHAIN = 0  # BIP-44's receiving branch, ``…/0/<index>``
MAX_INDEX = 2**31 - 1  # non-hardened children only: an xpub cannot derive hardened ones
_PRIVATE_PREFIXES = ("xprv", "tprv", "yprv", "zprv", "uprv", "vprv")


class InvalidAccountKey(ValueError):
    """The configured key is not a watch-only account key; the message never repeats it."""


@dataclass(frozen=True, eq=False)
class DepositAccount:
    """A parsed account key, its receiving branch ``…/0`` derived once."""

    _external: Any  # bip_utils.Bip32Secp256k1 at …/0

    def address(self, index: int) -> str:
        """The lowercase ``0x`` address of child ``index`` of the receiving branch."""
        if not 0 <= index <= MAX_INDEX:
            raise ValueError(f"deposit index {index} is out of range")
        return _address(self, index)


@lru_cache(maxsize=4096)
def _address(account: DepositAccount, index: int) -> str:
    from bip_utils import EthAddrEncoder

    child = account._external.ChildKey(index)
    return str(EthAddrEncoder.EncodeKey(child.PublicKey().RawCompressed().ToBytes())).lower()


@lru_cache(maxsize=8)
def parse_account(xpub: str) -> DepositAccount:
    """The account key ``xpub`` or :class:`InvalidAccountKey`: a private key (``xprv…``), a
    malformed key, or one at another depth than an account's (its addresses would not be the
    ones the merchant's wallet shows) is refused."""
    from bip_utils import Bip32Secp256k1

    text = xpub.strip()
    if text.startswith(_PRIVATE_PREFIXES):
        raise InvalidAccountKey("is a private key (xprv…): give the account's public key "
                                "(xpub…); payhook never holds a private key")
    try:
        key = Bip32Secp256k1.FromExtendedKey(text)
    except Exception:  # noqa: BLE001 - bip-utils raises one class per malformation
        raise InvalidAccountKey("is not a BIP-32 extended public key (xpub…)") from None
    if not key.IsPublicOnly():
        raise InvalidAccountKey("is a private key: give the account's public key (xpub…); "
                                "payhook never holds a private key")
    depth = int(key.Depth())
    if depth != ACCOUNT_DEPTH or not key.Index().IsHardened():
        raise InvalidAccountKey(f"is a key at depth {depth}, not an account key "
                                f"(m/44'/60'/<account>', depth {ACCOUNT_DEPTH})")
    return DepositAccount(key.ChildKey(EXTERNAL_CHAIN))


def payment_uri(address: str, chain_id: int | None, amount: int, contract: str | None) -> str:
    """The EIP-681 request a wallet opens: ``amount`` wei to ``address``, or ``amount`` base
    units of the token at ``contract`` transferred to ``address``, on chain ``chain_id`` (left
    out when none is configured: the wallet then uses the chain it is on)."""
    chain = "" if chain_id is None else f"@{chain_id}"
    if contract is None:
        return f"ethereum:{address}{chain}?value={amount}"
    return f"ethereum:{contract}{chain}/transfer?address={address}&uint256={amount}"
