"""Fixtures shared by every test: real PostgreSQL (a fresh database per test, cloned from a
migrated template) and the embedded SQLite file, the app, and HTTP clients.

A missing component fails the run with a line saying how to start it; nothing is skipped.
"""

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from payhook.app import create_app
from payhook.config import Settings, load_settings
from payhook.db.migrate import upgrade
from tests import signing, wallet

SECRET_KEY = "test-secret-key-0123456789abcdef0123456789"
ADMIN_TOKEN = "test-admin-token-0123456789abcdef"
PG_HINT = ("start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main "
           "start, or set TEST_DATABASE_URL")
BACKENDS = ["postgresql", "sqlite"]


def _admin_urls() -> list[str]:
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        return [configured]
    return [f"postgresql://{user}@127.0.0.1:5432/postgres" for user in ("postgres", "root")]


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(drivername="postgresql+asyncpg", database=name).render_as_string(
        hide_password=False)


async def _admin(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(_dsn(url))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    errors = []
    for url in _admin_urls():
        try:
            asyncio.run(_admin(url, "SELECT 1"))
            return url
        except (OSError, asyncpg.PostgresError) as error:
            errors.append(f"{make_url(url).render_as_string()}: {error}")
    pytest.exit(f"PostgreSQL is not reachable ({'; '.join(errors)}); {PG_HINT}", returncode=3)


@pytest.fixture(scope="session")
def pg_template(pg_admin_url: str) -> Iterator[str]:
    """A migrated database that every PostgreSQL test clones (CREATE DATABASE … TEMPLATE)."""
    name = f"payhook_template_{os.getpid()}"
    asyncio.run(_admin(pg_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)",
                       f"CREATE DATABASE {name}"))
    upgrade(_with_database(pg_admin_url, name))
    yield name
    asyncio.run(_admin(pg_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "payhook.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
async def pg_url(pg_admin_url: str, pg_template: str) -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database for this test alone."""
    name = f"payhook_test_{uuid.uuid4().hex[:16]}"
    await _admin(pg_admin_url, f"CREATE DATABASE {name} TEMPLATE {pg_template}")
    yield _with_database(pg_admin_url, name)
    await _admin(pg_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "payhook.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str:
    """The test's database on the parametrised backend: every API test runs on both."""
    fixture = "pg_url" if backend == "postgresql" else "sqlite_url"
    return str(request.getfixturevalue(fixture))


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"database_url": database_url, "secret_key": SECRET_KEY,
                              "admin_token": ADMIN_TOKEN,
                              "public_base_url": "http://payhook.test", **signing.SECRETS,
                              # crypto sessions need a deposit key: anvil's default wallet
                              "web3_xpub": wallet.XPUB, "web3_chain_id": wallet.CHAIN_ID}
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    """The app without its embedded drain: tests drive the outbox themselves (see drain())."""
    application = create_app(settings, embedded_worker=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://payhook.test") as http:
        yield http


@dataclass
class MerchantAccount:
    id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


async def new_merchant(client: httpx.AsyncClient, name: str = "Shop") -> MerchantAccount:
    answer = await client.post("/admin/merchants", json={"name": name},
                               headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    return MerchantAccount(id=body["id"], key=body["api_key"]["secret"])


@pytest.fixture
async def merchant(client: httpx.AsyncClient) -> MerchantAccount:
    return await new_merchant(client, "Acme")


@pytest.fixture
async def other_merchant(client: httpx.AsyncClient) -> MerchantAccount:
    return await new_merchant(client, "Globex")
