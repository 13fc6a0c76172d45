"""The merchant's wallet in the tests: anvil's default mnemonic, so the deposit addresses payhook
derives from the account's xpub are anvil's own funded dev accounts (index i is account i).

Derived here from the mnemonic with bip-utils' BIP-44 path API, not the extended-key API
payhook parses the xpub with; the tests compare both with eth-account's own derivation too.
"""

from functools import lru_cache

ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
CHAIN_ID = 424242  # the chain anvil serves (tests/anvil.py), every test's PAYHOOK_WEB3_CHAIN_ID


@lru_cache(maxsize=4)
def account_key(account: int = 0, private: bool = False) -> str:
    """The extended key of ``m/44'/60'/<account>'``: the xpub a merchant configures, or the
    xprv it must never give payhook."""
    from bip_utils import Bip39SeedGenerator, Bip44, Bip44Coins

    seed = Bip39SeedGenerator(ANVIL_MNEMONIC).Generate()
    node = Bip44.FromSeed(seed, Bip44Coins.ETHEREUM).Purpose().Coin().Account(account)
    key = node.PrivateKey() if private else node.PublicKey()
    return str(key.ToExtended())


XPUB = account_key()
