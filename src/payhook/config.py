"""Settings, read once from the environment into one typed object.

Names are the contract's (docs/api.md, Environment). A bad or missing value stops start-up with one
line naming it (:class:`ConfigError`). The embedded default (a SQLite file) may run without
``PAYHOOK_SECRET_KEY`` and ``PAYHOOK_ADMIN_TOKEN``: it generates both once and keeps them beside
the database file, so access links and keys survive a restart.
"""

import errno
import json
import os
import re
import secrets
import stat
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url

from payhook import providers
from payhook.domain.deposits import DepositAccount, InvalidAccountKey, parse_account

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./payhook.db"
SECRETS_FILE = "payhook.secret.json"
_PLACEHOLDERS = {"changeme", "change-me", "secret", "password", "test", "example", "xxx"}
_MIN_SECRET_LENGTH = 32
_MIN_TOKEN_LENGTH = 24
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


CommaList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split_commas)]


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one line naming it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYHOOK_", frozen=True, extra="ignore")

    database_url: str = Field(
        DEFAULT_DATABASE_URL, validation_alias=AliasChoices("DATABASE_URL", "database_url")
    )
    redis_url: str | None = Field(None, validation_alias=AliasChoices("REDIS_URL", "redis_url"))
    secret_key: SecretStr | None = None
    admin_token: SecretStr | None = None
    public_base_url: str = "http://127.0.0.1:8000"
    # One per registered provider (its ProviderSpec.secrets_setting).
    stripe_webhook_secrets: CommaList = ()
    onecom_webhook_secrets: CommaList = ()
    web3_webhook_secrets: CommaList = ()
    webhook_tolerance_seconds: int = Field(300, ge=1, le=86_400)
    web3_rpc_url: str | None = None
    web3_chain_id: int | None = Field(None, ge=1)
    # The watch-only account key every crypto session's deposit address derives from; not a
    # secret that spends, but it links all the merchant's payments: never shown or logged.
    web3_xpub: SecretStr | None = None
    web3_confirmations: int = Field(12, ge=1, le=10_000)
    web3_tokens: CommaList = ()
    access_link_days: int = Field(7, ge=1, le=365)
    smtp_url: str | None = None
    allow_private_urls: bool = False
    # An endpoint whose every try has failed this long is disabled (reason "failing"); hours,
    # fractions allowed (a test waits seconds, not days).
    endpoint_disable_after_hours: float = Field(120.0, gt=0, le=8760)
    outbox_backoff_seconds: float = Field(5.0, gt=0, le=86_400)
    outbox_max_attempts: int = Field(10, ge=1, le=100)
    # How long a claimed row stays a worker's before another may take it (a killed worker's
    # rows wait this long). An extension of the contract's environment, for operators.
    outbox_lease_seconds: float = Field(60.0, ge=1, le=3600)
    # What `payhook serve` grants one client (extensions of the contract's environment): the
    # time to send its request headers, then its body, and the connections open at once.
    http_header_timeout_seconds: float = Field(10.0, gt=0, le=3600)
    http_body_timeout_seconds: float = Field(30.0, gt=0, le=3600)
    http_max_connections: int = Field(1000, ge=1, le=1_000_000)
    # Done outbox rows, delivered deliveries, provider and merchant events are pruned past
    # this many days; never fewer than 30, the events API's promise (docs/api.md).
    retention_days: int = Field(30, ge=30, le=36_500)

    @field_validator("redis_url", "smtp_url", "web3_rpc_url", "web3_xpub", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        """``VAR=`` (as compose writes an unset ``${VAR:-}``) means not set."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        url = make_url(value)
        if url.drivername in ("postgresql", "postgres", "postgresql+asyncpg"):
            return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
        if url.drivername in ("sqlite", "sqlite+aiosqlite"):
            if not url.database or url.database == ":memory:":
                raise ValueError("SQLite needs a file path (':memory:' is not shared)")
            return url.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
        raise ValueError("use postgresql://… or sqlite+aiosqlite:///path")

    @field_validator("public_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @property
    def is_embedded(self) -> bool:
        """The SQLite default: drainer in the web process, secrets kept beside the database."""
        return self.database_url.startswith("sqlite")

    @property
    def data_dir(self) -> Path:
        database = make_url(self.database_url).database or "."
        return Path(database).resolve().parent

    @property
    def fiat_and_crypto_symbols(self) -> frozenset[str]:
        """The crypto assets sessions may be created in: ``eth`` and the configured tokens,
        and none without a deposit key to give each session its own address."""
        if self.web3_xpub is None:
            return frozenset()
        return frozenset({"eth"} | {token.split(":", 1)[0] for token in self.web3_tokens})

    @property
    def deposit_account(self) -> DepositAccount | None:
        """The parsed ``PAYHOOK_WEB3_XPUB`` (checked by load_settings), or None."""
        if self.web3_xpub is None:
            return None
        return parse_account(self.web3_xpub.get_secret_value())

    @property
    def retention(self) -> timedelta:
        return timedelta(days=self.retention_days)

    def require_secret(self) -> str:
        assert self.secret_key is not None  # guaranteed by load_settings
        return self.secret_key.get_secret_value()

    def require_admin_token(self) -> str:
        assert self.admin_token is not None  # guaranteed by load_settings
        return self.admin_token.get_secret_value()


_REPLACED = {"PAYHOOK_WEB3_RECEIVE_ADDRESS": "every crypto session gets an address of its own, "
                                            "derived from PAYHOOK_WEB3_XPUB"}


def load_settings(**overrides: Any) -> Settings:
    """Read the environment (plus explicit overrides, for tests) or raise :class:`ConfigError`."""
    for name, why in _REPLACED.items():  # silently ignoring it would hide the change
        if os.environ.get(name, "").strip():
            raise ConfigError(f"{name} is no longer read ({why}): unset it")
    try:
        settings = Settings(**overrides)
    except ValidationError as error:
        first = error.errors()[0]
        name = _env_name(str(first["loc"][0]) if first["loc"] else "?")
        raise ConfigError(f"{name}: {first['msg']}") from None
    if settings.is_embedded:
        settings = _with_embedded_secrets(settings)
    _check_secret("PAYHOOK_SECRET_KEY", settings.secret_key, _MIN_SECRET_LENGTH)
    _check_secret("PAYHOOK_ADMIN_TOKEN", settings.admin_token, _MIN_TOKEN_LENGTH)
    _check_tokens(settings.web3_tokens)
    _check_web3(settings)
    return settings


def _env_name(field: str) -> str:
    if field in ("database_url", "redis_url"):
        return field.upper()
    return field.upper() if field.isupper() else f"PAYHOOK_{field.upper()}"


def _check_secret(name: str, value: SecretStr | None, min_length: int) -> None:
    if value is None or not value.get_secret_value():
        raise ConfigError(f"{name} is required when DATABASE_URL is not the embedded SQLite file")
    raw = value.get_secret_value()
    if raw.lower() in _PLACEHOLDERS or len(raw) < min_length:
        raise ConfigError(f"{name} is a placeholder or shorter than {min_length} characters")


def _check_tokens(tokens: tuple[str, ...]) -> None:
    for token in tokens:
        parts = token.split(":")
        if (len(parts) != 3 or not parts[0].islower() or not _ADDRESS.match(parts[1])
                or not parts[2].isdigit()):
            raise ConfigError(
                f"PAYHOOK_WEB3_TOKENS: {token!r} is not symbol:contract:decimals (lowercase symbol)"
            )


def _check_web3(settings: Settings) -> None:
    """A bad deposit key would hand out addresses nobody can spend from: refuse it. Checking
    transactions needs the chain they are on and the key their recipients derive from."""
    if settings.web3_xpub is not None:
        try:
            parse_account(settings.web3_xpub.get_secret_value())
        except InvalidAccountKey as error:
            raise ConfigError(f"PAYHOOK_WEB3_XPUB {error}") from None
        if settings.web3_chain_id is None:
            raise ConfigError("PAYHOOK_WEB3_CHAIN_ID is required when PAYHOOK_WEB3_XPUB is set")
    if settings.web3_rpc_url is None:
        return
    for name in ("web3_chain_id", "web3_xpub"):
        if getattr(settings, name) is None:
            raise ConfigError(f"{_env_name(name)} is required when PAYHOOK_WEB3_RPC_URL is set")


def _generated() -> dict[str, Callable[[], str]]:
    """What the embedded default makes when unset: its keys, and each provider's webhook
    secret in the format that provider's secrets have."""
    return {"secret_key": lambda: secrets.token_urlsafe(48),
            "admin_token": lambda: secrets.token_urlsafe(32),
            **{spec.secrets_setting: spec.generate_secret for spec in providers.REGISTRY}}


def _with_embedded_secrets(settings: Settings) -> Settings:
    """Fill missing secrets from (or into) the data directory's secrets file, so the embedded
    default works out of the box: `payhook trigger` signs with the same webhook secrets."""
    missing = [name for name in _generated() if not getattr(settings, name)]
    if not missing:
        return settings
    stored = _read_or_create_secrets(settings.data_dir / SECRETS_FILE)
    updates: dict[str, Any] = {}
    for name in missing:
        value = stored[name]
        updates[name] = (value,) if name.endswith("_secrets") else SecretStr(value)
    return settings.model_copy(update=updates)


def _read_or_create_secrets(path: Path) -> dict[str, str]:
    try:
        return _read_secrets(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = {name: generate() for name, generate in _generated().items()}
    # Written to a new private file beside it (O_EXCL, mode 0600: no symlink or file planted
    # there is ever followed), then linked into place: two processes starting at once agree on
    # one file, and the loser reads the winner's.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(fresh, handle)
        os.link(temporary, path)
    except FileExistsError:
        return _read_secrets(path)
    finally:
        os.unlink(temporary)
    return fresh


_DELETING = " (or delete it: new secrets are made, and issued keys and sent links stop working)"


def _read_secrets(path: Path) -> dict[str, str]:
    """The stored secrets, from a regular file of ours that nobody else may read or change;
    :class:`FileNotFoundError` if there is none."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as error:
        if error.errno == errno.ENOENT:
            raise
        if error.errno == errno.ELOOP:
            raise ConfigError(f"{path} is a symbolic link: move the file itself there and "
                              f"chmod 600 it{_DELETING}") from None
        raise ConfigError(f"{path}: cannot be read ({error.strerror})") from None
    with os.fdopen(fd) as handle:
        _check_private(path, os.fstat(handle.fileno()))
        try:
            stored: dict[str, str] = json.loads(handle.read())
            return {name: str(stored[name]) for name in _generated()}
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"{path}: unreadable; restore or delete it") from None


def _check_private(path: Path, status: os.stat_result) -> None:
    if not stat.S_ISREG(status.st_mode):
        raise ConfigError(f"{path} is not a regular file: put the secrets file there{_DELETING}")
    if status.st_uid != os.getuid():
        raise ConfigError(f"{path} belongs to another user (uid {status.st_uid}): chown it to "
                          f"the user running payhook and chmod 600 it{_DELETING}")
    if status.st_mode & 0o077:
        raise ConfigError(f"{path} is open to group or others (mode "
                          f"{stat.S_IMODE(status.st_mode):03o}): run chmod 600 {path}"
                          f"{_DELETING}")
