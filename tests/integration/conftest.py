"""Fixtures of the merchant-webhook tests: a loopback merchant server, and the outbox drained
in this process with the real handlers (a minute of backoff, so a test decides when a retry
is due: ``flows.make_due``)."""

from collections.abc import AsyncIterator

import pytest

from payhook.outbox.retry import RetryPolicy
from tests import flows
from tests.merchant_server import MerchantServer, running


@pytest.fixture
async def server() -> AsyncIterator[MerchantServer]:
    async with running() as merchant_server:
        yield merchant_server


@pytest.fixture
async def drain(app):
    state = app.state.payhook
    drainer = flows.drainer(state.settings, state.engine, RetryPolicy(60))
    yield drainer
    await drainer.context.close()
