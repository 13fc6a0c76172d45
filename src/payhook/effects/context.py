"""What every effect handler may use, built once by the runner that starts the drain."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncEngine

from payhook.config import ConfigError, Settings
from payhook.crypto import Sealer
from payhook.effects.chain import Chain
from payhook.effects.mailer import Mailer
from payhook.effects.transport import MerchantClient, merchant_client
from payhook.services.access import AccessLinks
from payhook.services.api_keys import KeyHasher

DEADLINE_SECONDS = 20.0


class OriginGates:
    """At most ``limit`` requests in flight to one origin (scheme, host, port): a merchant's
    server is not hit by a whole batch at once, and the connection pool stays small.
    Different origins never wait for each other."""

    def __init__(self, limit: int = 8):
        self.limit = limit
        self._gates: dict[str, tuple[asyncio.Semaphore, int]] = {}

    @asynccontextmanager
    async def hold(self, url: str) -> AsyncIterator[None]:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        gate, users = self._gates.get(origin, (asyncio.Semaphore(self.limit), 0))
        self._gates[origin] = (gate, users + 1)
        try:
            async with gate:
                yield
        finally:
            gate, users = self._gates[origin]
            if users == 1:
                del self._gates[origin]  # no one waits: forget it (origins come and go)
            else:
                self._gates[origin] = (gate, users - 1)


@dataclass
class EffectContext:
    settings: Settings
    engine: AsyncEngine
    http: MerchantClient
    sealer: Sealer
    hasher: KeyHasher
    links: AccessLinks
    mailer: Mailer | None  # None without PAYHOOK_SMTP_URL
    chain: Chain | None = None  # None without PAYHOOK_WEB3_RPC_URL
    origins: OriginGates = field(default_factory=OriginGates)

    @property
    def deadline(self) -> float:
        """Seconds one network call may take, its wait for a connection or its turn included:
        well within the drain's handler timeout (half the lease), so that a batch always
        finishes and records what it did, and a slow peer fails only its own rows."""
        return min(DEADLINE_SECONDS, self.settings.outbox_lease_seconds / 3)

    @classmethod
    def build(cls, settings: Settings, engine: AsyncEngine) -> "EffectContext":
        secret = settings.require_secret()
        # Merchant endpoints: short timeouts, no redirects (3xx = failure), public addresses.
        http = merchant_client(settings.allow_private_urls)
        return cls(settings=settings, engine=engine, http=http, sealer=Sealer(secret),
                   hasher=KeyHasher(secret), links=AccessLinks.from_settings(settings),
                   mailer=_mailer(settings),
                   chain=Chain.connect(settings.web3_rpc_url) if settings.web3_rpc_url else None)

    async def close(self) -> None:
        await self.http.aclose()
        if self.mailer is not None:
            await self.mailer.close()
        if self.chain is not None:
            await self.chain.close()


def _mailer(settings: Settings) -> Mailer | None:
    if settings.smtp_url is None:
        return None
    try:
        return Mailer.from_url(settings.smtp_url,
                               f"payhook@{urlsplit(settings.public_base_url).hostname}")
    except ValueError as error:  # the URL may hold a password: say what is wrong, not the URL
        raise ConfigError(f"PAYHOOK_SMTP_URL: {error}") from None
