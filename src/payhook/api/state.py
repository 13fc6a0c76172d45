"""What the app builds at start-up and every endpoint reads: typed, in ``app.state``."""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request

from payhook.config import Settings
from payhook.crypto import Sealer
from payhook.ingest import Writer
from payhook.observability import Metrics
from payhook.providers import Provider
from payhook.services.access import AccessLinks
from payhook.services.api_keys import KeyHasher


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    hasher: KeyHasher
    sealer: Sealer
    links: AccessLinks
    metrics: Metrics
    providers: Mapping[str, Provider]
    ingest: Writer
    nudge: Callable[[], None]  # after a commit that wrote outbox rows
    # With a Web3 node: the chain watch's report for /readyz (built by the app: the API runs
    # no effect itself).
    web3_status: Callable[[], Awaitable[dict[str, Any]]] | None = None


def state(request: Request) -> AppState:
    app_state: AppState = request.app.state.payhook
    return app_state
