"""Settings: typed, read once; a bad or missing value is one line naming it."""

import json
import os
from datetime import timedelta

import pytest

from payhook.config import SECRETS_FILE, ConfigError, load_settings
from tests import wallet

PG = "postgresql://postgres@127.0.0.1/payhook"
GOOD = {"secret_key": "s" * 40, "admin_token": "a" * 30}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith("PAYHOOK_") or name in ("DATABASE_URL", "REDIS_URL"):
            monkeypatch.delenv(name)


def test_postgres_needs_a_secret_key_and_an_admin_token():
    with pytest.raises(ConfigError, match="^PAYHOOK_SECRET_KEY is required"):
        load_settings(database_url=PG, admin_token="a" * 30)
    with pytest.raises(ConfigError, match="^PAYHOOK_ADMIN_TOKEN is required"):
        load_settings(database_url=PG, secret_key="s" * 40)


@pytest.mark.parametrize("secret", ["changeme", "short", "secret"])
def test_placeholder_secrets_are_refused(secret):
    with pytest.raises(ConfigError, match="PAYHOOK_SECRET_KEY is a placeholder"):
        load_settings(database_url=PG, secret_key=secret, admin_token="a" * 30)


def test_data_is_kept_30_days_unless_told_longer():
    assert load_settings(database_url=PG, **GOOD).retention == timedelta(days=30)


def test_postgres_urls_get_the_asyncpg_driver():
    assert load_settings(database_url=PG, **GOOD).database_url.startswith("postgresql+asyncpg://")
    settings = load_settings(database_url="postgresql+asyncpg://u@h/d", **GOOD)
    assert settings.database_url == "postgresql+asyncpg://u@h/d"


@pytest.mark.parametrize(("variable", "value", "named"), [
    ("PAYHOOK_WEBHOOK_TOLERANCE_SECONDS", "soon", "PAYHOOK_WEBHOOK_TOLERANCE_SECONDS"),
    ("PAYHOOK_OUTBOX_MAX_ATTEMPTS", "0", "PAYHOOK_OUTBOX_MAX_ATTEMPTS"),
    ("PAYHOOK_ALLOW_PRIVATE_URLS", "maybe", "PAYHOOK_ALLOW_PRIVATE_URLS"),
    ("PAYHOOK_RETENTION_DAYS", "29", "PAYHOOK_RETENTION_DAYS"),  # the events API keeps 30
    ("PAYHOOK_RETENTION_DAYS", "30d", "PAYHOOK_RETENTION_DAYS"),
    ("DATABASE_URL", "mysql://x/y", "DATABASE_URL"),
    ("DATABASE_URL", "sqlite+aiosqlite:///:memory:", "DATABASE_URL"),
    ("PAYHOOK_PUBLIC_BASE_URL", "ftp://x", "PAYHOOK_PUBLIC_BASE_URL"),
    ("PAYHOOK_WEB3_TOKENS", "usdc:0xabc", "PAYHOOK_WEB3_TOKENS"),
    ("PAYHOOK_WEB3_TOKENS", "usdc:0xabc:6", "PAYHOOK_WEB3_TOKENS"),
    ("PAYHOOK_WEB3_RECEIVE_ADDRESS", "0x" + "ab" * 20, "PAYHOOK_WEB3_RECEIVE_ADDRESS"),
    ("PAYHOOK_WEB3_RPC_URL", "http://127.0.0.1:8545", "PAYHOOK_WEB3_CHAIN_ID"),
    ("PAYHOOK_WEB3_XPUB", wallet.XPUB[:60], "PAYHOOK_WEB3_XPUB"),  # cut short
    ("PAYHOOK_WEB3_XPUB", wallet.XPUB[:-1] + "x", "PAYHOOK_WEB3_XPUB"),  # its checksum fails
    ("PAYHOOK_WEB3_XPUB", wallet.XPUB, "PAYHOOK_WEB3_CHAIN_ID"),
])
def test_malformed_values_name_the_variable(monkeypatch, variable, value, named):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        load_settings(**GOOD)
    message = str(raised.value)
    assert message.startswith(named) and "\n" not in message


def test_environment_is_read(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", PG)
    monkeypatch.setenv("PAYHOOK_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("PAYHOOK_ADMIN_TOKEN", "t" * 30)
    monkeypatch.setenv("PAYHOOK_STRIPE_WEBHOOK_SECRETS", "whsec_a, whsec_b")
    monkeypatch.setenv("PAYHOOK_WEB3_TOKENS", "usdc:0x0000000000000000000000000000000000000001:6")
    monkeypatch.setenv("PAYHOOK_WEB3_XPUB", wallet.XPUB)
    monkeypatch.setenv("PAYHOOK_WEB3_CHAIN_ID", "1")
    monkeypatch.setenv("PAYHOOK_RETENTION_DAYS", "90")
    settings = load_settings()
    assert settings.retention == timedelta(days=90)
    assert settings.stripe_webhook_secrets == ("whsec_a", "whsec_b")
    assert settings.fiat_and_crypto_symbols == {"eth", "usdc"}
    assert not settings.is_embedded and settings.require_secret() == "k" * 40


def test_embedded_default_generates_and_keeps_its_secrets(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/payhook.db"
    first = load_settings(database_url=url)
    second = load_settings(database_url=url)
    assert first.require_secret() == second.require_secret()
    assert len(first.require_secret()) >= 32 and len(first.require_admin_token()) >= 24
    stored = tmp_path / SECRETS_FILE
    assert oct(stored.stat().st_mode & 0o777) == "0o600"
    assert json.loads(stored.read_text())["secret_key"] == first.require_secret()


def test_embedded_default_prefers_configured_secrets(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/payhook.db"
    webhooks = {"stripe_webhook_secrets": "whsec_s", "onecom_webhook_secrets": "o",
                "web3_webhook_secrets": "whsec_dzM="}
    settings = load_settings(database_url=url, **GOOD, **webhooks)
    assert settings.require_secret() == "s" * 40
    assert settings.stripe_webhook_secrets == ("whsec_s",)
    assert not (tmp_path / SECRETS_FILE).exists()


def test_embedded_default_can_verify_webhooks_out_of_the_box(tmp_path):
    settings = load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/payhook.db")
    assert settings.stripe_webhook_secrets[0].startswith("whsec_")
    assert settings.web3_webhook_secrets[0].startswith("whsec_")
    assert settings.onecom_webhook_secrets[0]
    assert load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/payhook.db") == settings


def test_outside_the_embedded_default_no_webhook_secret_is_invented():
    settings = load_settings(database_url=PG, **GOOD)
    assert settings.stripe_webhook_secrets == () == settings.web3_webhook_secrets


def test_a_corrupt_secrets_file_stops_start_up(tmp_path):
    (tmp_path / SECRETS_FILE).write_text("{not json")
    with pytest.raises(ConfigError, match=SECRETS_FILE):
        load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/payhook.db")


def test_the_secrets_file_is_created_private_whatever_the_umask(tmp_path):
    previous = os.umask(0)
    try:
        load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/payhook.db")
    finally:
        os.umask(previous)
    assert oct((tmp_path / SECRETS_FILE).stat().st_mode & 0o777) == "0o600"
    assert [path.name for path in tmp_path.iterdir()] == [SECRETS_FILE]  # no temporary left


def test_a_planted_link_beside_the_secrets_file_is_never_followed(tmp_path):
    """The file is written aside first: a symlink planted at a guessable name there must not
    carry the secrets elsewhere."""
    stolen = tmp_path / "stolen"
    (tmp_path / f".{SECRETS_FILE}.{os.getpid()}").symlink_to(stolen)
    load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/payhook.db")
    assert not stolen.exists()


def _refusal(tmp_path) -> str:
    with pytest.raises(ConfigError) as refused:
        load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/payhook.db")
    message = str(refused.value)
    assert "\n" not in message and str(tmp_path / SECRETS_FILE) in message
    return message


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o602], ids=oct)
def test_a_secrets_file_open_to_others_is_refused(tmp_path, mode):
    load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/payhook.db")
    (tmp_path / SECRETS_FILE).chmod(mode)
    message = _refusal(tmp_path)
    assert f"mode {mode:03o}" in message and "chmod 600" in message


def test_a_secrets_file_of_another_user_is_refused(tmp_path, monkeypatch):
    load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/payhook.db")
    monkeypatch.setattr(os, "getuid", lambda: (tmp_path / SECRETS_FILE).stat().st_uid + 1)
    assert "belongs to another user" in _refusal(tmp_path)


@pytest.mark.parametrize("target", ["elsewhere.json", "missing.json"])
def test_a_secrets_file_that_is_a_symlink_is_refused(tmp_path, target):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    load_settings(database_url=f"sqlite+aiosqlite:///{elsewhere}/payhook.db")
    (elsewhere / SECRETS_FILE).rename(elsewhere / "elsewhere.json")
    (tmp_path / SECRETS_FILE).symlink_to(elsewhere / target)
    assert "is a symbolic link" in _refusal(tmp_path)


def test_without_a_deposit_key_no_crypto_asset_is_accepted():
    tokens = "usdc:0x0000000000000000000000000000000000000001:6"
    assert load_settings(database_url=PG, web3_tokens=tokens, **GOOD).fiat_and_crypto_symbols \
        == frozenset()
    settings = load_settings(database_url=PG, web3_tokens=tokens, web3_xpub=wallet.XPUB,
                             web3_chain_id=1, **GOOD)
    assert settings.fiat_and_crypto_symbols == {"eth", "usdc"}
    assert wallet.XPUB not in repr(settings)  # it links every payment: never shown


@pytest.mark.parametrize(("key", "why"), [
    (wallet.account_key(private=True), "is a private key"),
    (wallet.account_key(private=True).replace("xprv", " xprv"), "is a private key"),
    ("", None),  # unset, as compose writes an empty ${VAR:-}
    ("xpub-not-base58", "is not a BIP-32 extended public key"),
])
def test_only_a_watch_only_account_key_is_a_deposit_key(key, why):
    if why is None:
        assert load_settings(database_url=PG, web3_xpub=key, **GOOD).web3_xpub is None
        return
    with pytest.raises(ConfigError) as raised:
        load_settings(database_url=PG, web3_xpub=key, web3_chain_id=1, **GOOD)
    message = str(raised.value)
    assert message.startswith(f"PAYHOOK_WEB3_XPUB {why}") and "\n" not in message
    assert key.strip() not in message  # a private key given by mistake is never repeated


def test_a_key_at_another_depth_than_an_account_is_refused():
    """The coin's key (depth 2) or the receiving branch (depth 4) would derive addresses the
    merchant's wallet does not show."""
    from bip_utils import Bip32Secp256k1

    account = Bip32Secp256k1.FromExtendedKey(wallet.account_key(private=True))
    branch = account.ChildKey(0).PublicKey().ToExtended()
    with pytest.raises(ConfigError, match="^PAYHOOK_WEB3_XPUB is a key at depth 4, not an"):
        load_settings(database_url=PG, web3_xpub=branch, web3_chain_id=1, **GOOD)


def test_an_rpc_url_needs_a_deposit_key():
    with pytest.raises(ConfigError, match="^PAYHOOK_WEB3_XPUB is required when PAYHOOK_WEB3_RPC"):
        load_settings(database_url=PG, web3_rpc_url="http://127.0.0.1:8545", web3_chain_id=1,
                      **GOOD)
