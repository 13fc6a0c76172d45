"""Real processes for end-to-end tests: payhook's web and worker processes, and a Redis server
of the test's own (so it can be stopped and started again)."""

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis

from tests.e2e.conftest import clean_environment, free_port, wait_until_up

BIN = Path(sys.executable).parent


@dataclass
class Process:
    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    cwd: Path | None = None

    def start(self) -> "Process":
        with self.log.open("ab") as output:
            self.popen = subprocess.Popen(self.args, env=self.env, stdout=output, cwd=self.cwd,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        return self

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no chance to settle anything."""
        assert self.popen is not None
        os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM and wait: the graceful path."""
        if self.popen is None or self.popen.poll() is not None:
            return self.popen.returncode if self.popen else 0
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)
            raise AssertionError(f"{self.name} ignored SIGTERM for {timeout} s") from None

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Web(Process):
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Web":
        super().start()
        try:
            wait_until_up(f"{self.url}/healthz", 30, lambda: self.alive)
        except BaseException:
            self.stop()
            raise AssertionError(f"web did not start:\n{self.output()[-3000:]}") from None
        return self


def web(env: dict[str, str], log: Path, bin_dir: Path = BIN, cwd: Path | None = None) -> Web:
    port = free_port()
    return Web("web", [str(bin_dir / "payhook"), "serve", "--port", str(port)], env, log, cwd=cwd,
               port=port)


def worker(env: dict[str, str], log: Path, bin_dir: Path = BIN,
           cwd: Path | None = None) -> Process:
    """As the Procfile starts it."""
    return Process("worker", [str(bin_dir / "payhook"), "worker"], env, log, cwd=cwd)


@dataclass
class RedisServer:
    directory: Path
    port: int = field(default_factory=free_port)
    popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.exit("redis-server is not installed; install it with: apt-get install "
                        "redis-server", returncode=3)
        self.popen = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.port).ping():
                    return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            self.popen.wait(timeout=10)


def service_env(database_url: str, **extra: str) -> dict[str, str]:
    from tests.conftest import ADMIN_TOKEN, SECRET_KEY
    from tests.signing import SECRETS

    env = clean_environment()
    env.update({"DATABASE_URL": database_url, "PAYHOOK_SECRET_KEY": SECRET_KEY,
                "PAYHOOK_ADMIN_TOKEN": ADMIN_TOKEN,
                **{f"PAYHOOK_{name.upper()}": value for name, value in SECRETS.items()}})
    env.update(extra)
    return env


def wait_for(check, seconds: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def admin_headers() -> dict[str, str]:
    from tests.conftest import ADMIN_TOKEN

    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def new_merchant(base_url: str) -> dict[str, str]:
    answer = httpx.post(f"{base_url}/admin/merchants", json={"name": "e2e"},
                        headers=admin_headers(), timeout=10)
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['api_key']['secret']}"}


async def merchant_with_endpoint(client: httpx.AsyncClient, endpoint) -> dict[str, str]:
    """A new merchant's auth headers, its webhook endpoint the test's merchant server."""
    created = await client.post("/admin/merchants", json={"name": "e2e"},
                                headers=admin_headers())
    merchant = {"Authorization": f"Bearer {created.json()['api_key']['secret']}"}
    hook = await client.post("/v1/webhook_endpoints", json={"url": endpoint.url},
                             headers=merchant)
    assert hook.status_code == 201, hook.text
    endpoint.secret = hook.json()["secret"]
    return merchant


async def count(database_url: str, sql: str) -> int:
    return int(await fetch_value(database_url, sql))


async def eventually(check, seconds: float, what: str, interval: float = 0.2) -> None:
    """``wait_for`` for an async check, in a test's event loop."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


async def fetch_value(database_url: str, sql: str):
    """One value straight from the test's PostgreSQL database."""
    import asyncpg

    from tests.conftest import _dsn

    conn = await asyncpg.connect(_dsn(database_url))
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()
