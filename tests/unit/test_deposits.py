"""Deposit addresses derived from a watch-only account key, and the payment URIs that show
them; pure (the addresses are compared with anvil's accounts in integration/test_onchain.py)."""

import pytest

from payhook.domain.deposits import InvalidAccountKey, parse_account, payment_uri
from tests import wallet

# anvil's first two dev accounts, as anvil prints them (EIP-55), for the default mnemonic
ACCOUNT_0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
ACCOUNT_1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def test_the_account_key_derives_the_wallets_receiving_addresses_lowercase():
    account = parse_account(wallet.XPUB)
    assert [account.address(0), account.address(1)] == [ACCOUNT_0.lower(), ACCOUNT_1.lower()]
    assert parse_account(f" {wallet.XPUB}\n").address(1) == ACCOUNT_1.lower()


def test_another_account_derives_other_addresses():
    assert parse_account(wallet.account_key(1)).address(0) != ACCOUNT_0.lower()


@pytest.mark.parametrize("index", [-1, 2**31])
def test_only_non_hardened_indexes_exist(index):
    with pytest.raises(ValueError, match="out of range"):
        parse_account(wallet.XPUB).address(index)


def test_a_private_key_is_refused_without_repeating_it():
    private = wallet.account_key(private=True)
    with pytest.raises(InvalidAccountKey) as refused:
        parse_account(private)
    assert "private key" in str(refused.value) and private not in str(refused.value)


def test_payment_uris_are_eip681():
    address, token = "0x" + "ab" * 20, "0x" + "cd" * 20
    assert payment_uri(address, 1, 10**18, None) == f"ethereum:{address}@1?value={10**18}"
    assert payment_uri(address, 137, 5_000_000, token) == (
        f"ethereum:{token}@137/transfer?address={address}&uint256=5000000")
    assert payment_uri(address, None, 7, None) == f"ethereum:{address}?value=7"
