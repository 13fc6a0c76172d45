"""The embedded default's files hold access links, customers' data and the secrets: created
by `payhook migrate` and `payhook serve` under the usual umask, each is its owner's alone."""

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from payhook.config import SECRETS_FILE
from tests.e2e.conftest import clean_environment
from tests.e2e.processes import BIN, web


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)  # the usual default, inherited by the processes started below
    yield
    os.umask(previous)


def mode(path: Path) -> str:
    return oct(path.stat().st_mode & 0o777)


def test_migrate_and_serve_create_every_file_owner_only(tmp_path, umask_022):
    env = {**clean_environment(), "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/payhook.db"}
    migrated = subprocess.run([str(BIN / "payhook"), "migrate"], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    assert mode(tmp_path / "payhook.db") == "0o600"
    admin_token = json.loads((tmp_path / SECRETS_FILE).read_text())["admin_token"]

    server = web(env, tmp_path / "web.log").start()
    try:
        answer = httpx.post(f"{server.url}/admin/merchants", json={"name": "shop"}, timeout=10,
                            headers={"Authorization": f"Bearer {admin_token}"})
        assert answer.status_code == 201, answer.text
        files = ["payhook.db", "payhook.db-wal", "payhook.db-shm", SECRETS_FILE]
        assert {name: mode(tmp_path / name) for name in files} == dict.fromkeys(files, "0o600")
    finally:
        server.stop()
