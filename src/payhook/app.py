"""The Starlette application: routes, middleware and error handlers from lists, and a lifespan
that builds the engine (and, in later work, the embedded drainer)."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware

from payhook import providers
from payhook.api import admin, merchant, openapi, public, webhooks
from payhook.api.errors import HANDLERS
from payhook.api.middleware import Observe
from payhook.api.state import AppState
from payhook.config import Settings, load_settings
from payhook.db.engine import create_engine
from payhook.ingest import PortableWriter
from payhook.observability import Metrics
from payhook.services.api_keys import KeyHasher

log = logging.getLogger("payhook")

routes = [*merchant.routes, *webhooks.routes, *public.routes, *admin.routes, *openapi.routes]


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or load_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url)
        app.state.payhook = AppState(
            settings=settings, engine=engine,
            hasher=KeyHasher(settings.require_secret()), metrics=metrics,
            providers=providers.configured(settings),
            ingest=PortableWriter(engine, settings.outbox_max_attempts,
                                  settings.fiat_and_crypto_symbols),
        )
        log.info("payhook started", extra={"embedded": settings.is_embedded})
        try:
            yield
        finally:
            await engine.dispose()

    return Starlette(
        routes=routes,
        middleware=[Middleware(Observe, metrics=metrics)],
        exception_handlers=HANDLERS,
        lifespan=lifespan,
    )
