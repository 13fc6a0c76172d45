"""Helpers for tests that run payhook as real processes."""

import os
import socket
import time

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_environment() -> dict[str, str]:
    """The caller's environment without any payhook setting: a newcomer's shell."""
    return {name: value for name, value in os.environ.items()
            if not name.startswith("PAYHOOK_") and name not in ("DATABASE_URL", "REDIS_URL")}


def wait_until_up(url: str, seconds: float, alive: "callable[[], bool]") -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert alive(), "the service exited before it answered"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {seconds} s")


@pytest.fixture
def redis_server(tmp_path):
    """A Redis of the test's own, on a free port, that the test may stop and start again."""
    from tests.e2e.processes import RedisServer

    server = RedisServer(tmp_path).start()
    yield server
    server.stop()
