"""What every effect handler may use, built once by the runner that starts the drain."""

from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from payhook.config import Settings
from payhook.crypto import Sealer
from payhook.services.api_keys import KeyHasher


@dataclass
class EffectContext:
    settings: Settings
    engine: AsyncEngine
    http: httpx.AsyncClient
    sealer: Sealer
    hasher: KeyHasher

    @classmethod
    def build(cls, settings: Settings, engine: AsyncEngine) -> "EffectContext":
        secret = settings.require_secret()
        # Merchant endpoints: short timeouts, and redirects are never followed (3xx = failure).
        http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0),
                                 follow_redirects=False, trust_env=False)
        return cls(settings=settings, engine=engine, http=http, sealer=Sealer(secret),
                   hasher=KeyHasher(secret))

    async def close(self) -> None:
        await self.http.aclose()
