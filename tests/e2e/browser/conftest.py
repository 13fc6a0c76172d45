"""Real pages in a real browser: Debian's Chromium (``/usr/bin/chromium``) driven by
Playwright, against real payhook web processes.

One browser and one stack (PostgreSQL database, web process draining its own
outbox) shared by all the browser tests, so they stay fast; each test opens its own browser
context (its own cookies). Screenshots go to ``test-artifacts/screenshots`` (git-ignored); with
``PAYHOOK_DOCS_SCREENSHOTS=1`` they are written to ``docs/img`` too (the README's set).
"""

import asyncio
import os
import shutil
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests import wallet
from tests.conftest import ADMIN_TOKEN, _admin, _with_database
from tests.e2e.conftest import free_port
from tests.e2e.processes import Web, fetch_value, service_env

CHROMIUM = Path("/usr/bin/chromium")
# What Chromium needs on these machines (headless, as root, with no network beyond loopback).
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
SIZES = {"desktop": {"width": 1280, "height": 860}, "phone": {"width": 390, "height": 844}}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="package")
def browser(stack, sqlite_template):
    """Playwright's sync API keeps an event loop running in this thread while it is open, so
    whatever runs one of its own (the stack's database set-up, migrations) comes first, tests
    reach the database through :func:`db_value`, and the browser closes with this package
    (the suite's async tests after it need the thread's loop free)."""
    if not CHROMIUM.exists():
        pytest.exit("Chromium is missing: install it with apt-get install -y chromium "
                    "(make test does)", returncode=3)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield launched
        launched.close()


@dataclass
class Stack:
    web: Web
    database_url: str

    @property
    def url(self) -> str:
        return self.web.url


def start_stack(database_url: str, log: Path, **env: str) -> Stack:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = service_env(database_url, PAYHOOK_PUBLIC_BASE_URL=base,
                           PAYHOOK_ALLOW_PRIVATE_URLS="true", PAYHOOK_OUTBOX_MAX_ATTEMPTS="2",
                           PAYHOOK_OUTBOX_BACKOFF_SECONDS="0.2", PAYHOOK_WEB3_XPUB=wallet.XPUB,
                           PAYHOOK_WEB3_CHAIN_ID=str(wallet.CHAIN_ID), **env)
    from tests.e2e.processes import BIN

    web = Web("web", [str(BIN / "payhook"), "serve", "--port", str(port)], settings, log,
              port=port)
    return Stack(web=web.start(), database_url=database_url)


@pytest.fixture(scope="package")
def stack(pg_admin_url, pg_template, tmp_path_factory) -> Iterator[Stack]:
    """One web process on its own PostgreSQL database; no Redis, so it drains its outbox
    itself."""
    name = f"payhook_browser_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(pg_admin_url, f"CREATE DATABASE {name} TEMPLATE {pg_template}"))
    running = start_stack(_with_database(pg_admin_url, name),
                          tmp_path_factory.mktemp("browser") / "web.log")
    yield running
    running.web.stop()
    assert "Traceback" not in running.web.output(), running.web.output()[-3000:]
    asyncio.run(_admin(pg_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
def context(browser):
    opened = browser.new_context(viewport=SIZES["desktop"])
    yield opened
    opened.close()


@pytest.fixture
def page(context):
    """A page that fails the test if any dialog opens (an injected script would)."""
    opened = context.new_page()
    dialogs: list[str] = []
    opened.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    yield opened
    assert dialogs == [], f"a dialog opened: {dialogs}"


def db_value(database_url: str, sql: str):
    """One value from the stack's database, on a thread of its own (see :func:`browser`)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, fetch_value(database_url, sql)).result()


def shoot(page, name: str) -> None:
    """The page at desktop and phone widths, as test artifacts (and into docs/img if asked)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for size, viewport in SIZES.items():
        page.set_viewport_size(viewport)
        path = ARTIFACTS / f"{name}-{size}.png"
        page.screenshot(path=str(path), full_page=True)
        if os.environ.get("PAYHOOK_DOCS_SCREENSHOTS") == "1":
            (ROOT / "docs" / "img").mkdir(exist_ok=True)
            shutil.copyfile(path, ROOT / "docs" / "img" / path.name)
    page.set_viewport_size(SIZES["desktop"])


def new_merchant(stack: Stack) -> tuple[str, dict[str, str]]:
    """A new merchant: its id and its test key's headers."""
    answer = httpx.post(f"{stack.url}/admin/merchants", json={"name": "Browser shop"},
                        headers=ADMIN, timeout=10)
    answer.raise_for_status()
    body = answer.json()
    return body["id"], {"Authorization": f"Bearer {body['api_key']['secret']}"}
