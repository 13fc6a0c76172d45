"""Fixtures of the integration tests: every drain context a test built, closed after it; a
loopback merchant server; and the outbox drained in this process with the real handlers (a
minute of backoff, so a test decides when a retry is due: ``flows.make_due``)."""

from collections.abc import AsyncIterator

import pytest

from payhook.outbox.retry import RetryPolicy
from tests import flows
from tests.merchant_server import MerchantServer, running


@pytest.fixture(autouse=True)
async def _close_drainers() -> AsyncIterator[None]:
    """Every drain context a test built with :func:`tests.flows.drainer`, closed after it."""
    yield
    await flows.close_built()


@pytest.fixture
async def server() -> AsyncIterator[MerchantServer]:
    async with running() as merchant_server:
        yield merchant_server


@pytest.fixture
async def drain(app):
    state = app.state.payhook
    drainer = flows.drainer(state.settings, state.engine, RetryPolicy(60))
    yield drainer  # closed by _close_drainers
