"""The on-chain money rules alone; the node-backed tests are in integration/test_onchain.py."""

from dataclasses import replace

from payhook.domain.onchain import (
    TRANSFER_TOPIC,
    Expected,
    Log,
    MinedTransaction,
    Tally,
    Verdict,
    judge,
    tally,
    token_contracts,
)

US = "0x" + "ab" * 20
TOKEN = "0x" + "cd" * 20
FAKE = "0x" + "ef" * 20
SOMEONE = "0x" + "12" * 20
NATIVE = Expected(amount=100, address=US.upper().replace("0X", "0x"), token=None,
                  not_before=1_000)
TOKEN_SESSION = replace(NATIVE, token=TOKEN)


def topic(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address[2:])


def transfer(contract: str, to: str, value: int) -> Log:
    return Log(contract, (TRANSFER_TOPIC, topic(SOMEONE), topic(to)), value.to_bytes(32, "big"))


def mined(to: str | None = US, value: int = 0, logs: tuple[Log, ...] = (), status: int = 1,
          timestamp: int = 1_000) -> MinedTransaction:
    return MinedTransaction(hash="0x" + "00" * 32, to=to, value=value, status=status,
                            block_number=7, block_hash="0x" + "11" * 32,
                            block_timestamp=timestamp, logs=logs)


def test_native_payment_to_the_session_address_any_case():
    assert judge(mined(value=100), NATIVE) == Verdict(True, 100)


def test_a_block_of_the_session_creation_second_is_not_too_old():
    assert judge(mined(value=100, timestamp=1_000), NATIVE).counts
    assert judge(mined(value=100, timestamp=999), NATIVE).anomaly == "too_old"


def test_a_contract_creation_pays_nobody():
    assert judge(mined(to=None, value=100), NATIVE).anomaly == "wrong_recipient"


def test_status_is_checked_before_anything_else():
    assert judge(mined(value=100, status=0), NATIVE).anomaly == "reverted"


def test_token_transfers_to_us_from_the_configured_contract_are_added_up():
    verdict = judge(mined(to=TOKEN, logs=(transfer(TOKEN, US, 60), transfer(TOKEN, US, 40))),
                    TOKEN_SESSION)
    assert verdict == Verdict(True, 100)


def test_native_value_does_not_pay_a_token_session():
    assert judge(mined(value=10**18), TOKEN_SESSION).anomaly == "wrong_token"


def test_a_look_alike_transfer_is_named_and_ignored():
    verdict = judge(mined(to=FAKE, logs=(transfer(FAKE, US, 100),)), TOKEN_SESSION)
    assert (verdict.counts, verdict.anomaly) == (False, "wrong_token")
    assert verdict.details == {"token_contracts": [FAKE]}


def test_the_right_token_to_someone_else_is_a_wrong_recipient():
    verdict = judge(mined(to=TOKEN, logs=(transfer(TOKEN, SOMEONE, 100),)), TOKEN_SESSION)
    assert verdict.anomaly == "wrong_recipient" and verdict.details == {"recipients": [SOMEONE]}


def test_an_erc721_transfer_has_the_same_topic_but_is_no_payment():
    nft = Log(TOKEN, (TRANSFER_TOPIC, topic(SOMEONE), topic(US), (100).to_bytes(32, "big")), b"")
    assert judge(mined(to=TOKEN, logs=(nft,)), TOKEN_SESSION).anomaly == "wrong_token"


def test_any_amount_to_the_session_address_counts_and_the_tally_decides():
    """A transfer short of the amount still counts (the next one adds to it); the sum pays."""
    assert judge(mined(value=99), NATIVE) == Verdict(True, 99)
    assert judge(mined(value=101), NATIVE) == Verdict(True, 101)
    assert tally(100, 99) == Tally(False, "underpaid", {"expected": 100, "received": 99})
    assert tally(100, 100) == Tally(True)
    assert tally(100, 101) == Tally(True, "overpaid", {"expected": 100, "received": 101})


def test_nothing_brought_to_the_address_does_not_count():
    assert judge(mined(value=0), NATIVE) == Verdict(False, 0, "underpaid",
                                                   {"expected": 100, "received": 0})


def test_another_sessions_address_is_a_wrong_recipient():
    other = replace(NATIVE, address=SOMEONE)
    assert judge(mined(value=100), other).anomaly == "wrong_recipient"
    token_elsewhere = replace(TOKEN_SESSION, address=SOMEONE)
    verdict = judge(mined(to=TOKEN, logs=(transfer(TOKEN, US, 100),)), token_elsewhere)
    assert (verdict.anomaly, verdict.details) == ("wrong_recipient", {"recipients": [US]})


def test_token_settings_are_read_with_lowercase_contracts():
    assert token_contracts([f"usdt:{TOKEN.upper().replace('0X', '0x')}:6"]) == {"usdt": TOKEN}
