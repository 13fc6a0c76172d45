"""The Starlette application: routes, middleware and error handlers from lists, and a lifespan
that builds the engine (and, in later work, the embedded drainer)."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from starlette.applications import Starlette
from starlette.middleware import Middleware

from payhook import providers
from payhook.api import admin, console, merchant, openapi, pages, public, webhooks
from payhook.api.errors import HANDLERS
from payhook.api.middleware import Observe
from payhook.api.state import AppState
from payhook.config import Settings, load_settings
from payhook.crypto import Sealer
from payhook.effects import watch_status
from payhook.effects.chain import Chain
from payhook.ingest import open_storage
from payhook.observability import Metrics
from payhook.outbox.nudge import ArqNudger
from payhook.runtime import close_pump, keep_out_of_collection, start_pump
from payhook.services.access import AccessLinks
from payhook.services.api_keys import KeyHasher

log = logging.getLogger("payhook")

EMBEDDED_POLL_SECONDS = 0.5

# Starlette tries the routes in order: the webhooks, most of the traffic, come first (their
# path shares no prefix with any other route, so the order changes no answer).
routes = [*webhooks.routes, *merchant.routes, *public.routes, *admin.routes, *openapi.routes,
          *console.routes, pages.static]


def _no_nudge() -> None:
    """Nobody drains in this process (tests that drain by hand)."""


def create_app(settings: Settings | None = None, *, embedded_worker: bool = True) -> Starlette:
    """The app. ``embedded_worker=False`` leaves the embedded default's outbox undrained, for
    tests that drive the drain step by step."""
    settings = settings or load_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine, writer = await open_storage(settings)
        nudger, pump = None, None
        if settings.redis_url:  # production: a separate arq worker drains; we only nudge it
            nudger = ArqNudger(settings.redis_url)
            nudge = nudger.nudge
        elif embedded_worker:  # embedded default: the same drain, as a task in this process
            pump = await start_pump(settings, engine, poll_seconds=EMBEDDED_POLL_SECONDS)
            nudge = pump.nudge
        else:
            nudge = _no_nudge
        secret = settings.require_secret()
        chain = Chain.connect(settings.web3_rpc_url) if settings.web3_rpc_url else None
        app.state.payhook = AppState(
            settings=settings, engine=engine, hasher=KeyHasher(secret), sealer=Sealer(secret),
            links=AccessLinks.from_settings(settings), metrics=metrics,
            providers=providers.configured(settings),
            ingest=writer, nudge=nudge,
            web3_status=None if chain is None else partial(watch_status.report, engine, chain,
                                                            settings),
        )
        log.info("payhook started", extra={"embedded": settings.is_embedded})
        keep_out_of_collection()
        try:
            yield
        finally:
            if pump is not None:
                await close_pump(pump)
            if chain is not None:
                await chain.close()
            if nudger is not None:
                await nudger.close()
            await writer.close()
            await engine.dispose()

    return Starlette(
        routes=routes,
        middleware=[Middleware(Observe, metrics=metrics)],
        exception_handlers=HANDLERS,
        lifespan=lifespan,
    )
