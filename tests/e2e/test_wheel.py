"""Installed as users install it: the wheel, in a fresh venv outside the checkout, migrates,
serves and works off the outbox (PostgreSQL + a Redis of the test's own); and importing the
worker reads no setting and writes no file."""

import asyncio
import shutil
import subprocess
import sys
import sysconfig
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest
import redis

from payhook.outbox.nudge import DRAIN_JOB
from tests import signing
from tests.conftest import _admin, _with_database
from tests.e2e.processes import (
    fetch_value,
    new_merchant,
    service_env,
    wait_for,
    web,
    worker,
)

ROOT = Path(__file__).resolve().parents[2]
# A clone's files: what `pip install .` from one builds the wheel from.
NOT_CLONED = shutil.ignore_patterns(".git", ".venv", "node_modules", "build", "dist", "run",
                                    "*.egg-info", "__pycache__", ".*_cache", ".hypothesis",
                                    "*.db", "*.db-*", "payhook.secret.json")


def build_wheel(tmp_path: Path) -> Path:
    """Offline (the .venv's setuptools, from the `test` extra) and from a copy, since a
    `build/` left in the checkout would leak stale files into the wheel."""
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=NOT_CLONED)
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(dist), str(source)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = dist.glob("payhook-*.whl")
    return wheel


def check_contents(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {name.split("/")[0] for name in names} == {"payhook", wheel.name.split("-py")[0]
                                                     + ".dist-info"}  # no top-level worker/
    sources = {f"payhook/{path.relative_to(ROOT / 'src' / 'payhook').as_posix()}"
               for path in (ROOT / "src" / "payhook").rglob("*.py")}
    assert sources - names == set()  # every subpackage is listed in pyproject.toml
    assets = {f"payhook/{path.relative_to(ROOT / 'src' / 'payhook').as_posix()}"
              for folder in ("templates", "static")
              for path in (ROOT / "src" / "payhook" / folder).rglob("*") if path.is_file()}
    assert "payhook/templates/console/session.html" in assets
    assert assets - names == set()  # the pages' templates and assets are package data
    migrations = {f"payhook/migrations/{path.relative_to(ROOT / 'migrations').as_posix()}"
                  for pattern in ("*.py", "script.py.mako", "versions/*.py")
                  for path in (ROOT / "migrations").glob(pattern)}
    assert "payhook/migrations/versions/0001_initial.py" in migrations
    assert migrations - names == set()


def fresh_venv(tmp_path: Path, wheel: Path) -> Path:
    """A venv with the wheel installed. Its dependencies come from the .venv through a .pth
    file (fast, offline): a .pth line adds a directory, never the .pth files in it, so the
    checkout's editable payhook is not importable there."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], check=True, capture_output=True, text=True)
    Path(site.stdout.strip(), "payhook-test-dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True,
                   timeout=300)
    return venv


def run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def empty_pg_url(pg_admin_url: str):
    """A PostgreSQL database without a schema: `payhook migrate` makes it."""
    name = f"payhook_wheel_{uuid.uuid4().hex[:16]}"
    asyncio.run(_admin(pg_admin_url, f"CREATE DATABASE {name}"))
    yield _with_database(pg_admin_url, name)
    asyncio.run(_admin(pg_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def query(url: str, sql: str):
    return asyncio.run(fetch_value(url, sql))


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_installed_wheel_migrates_serves_and_pays_a_session(empty_pg_url, redis_server,
                                                                tmp_path):
    wheel = build_wheel(tmp_path)
    check_contents(wheel)
    venv = fresh_venv(tmp_path, wheel)
    bin_dir = venv / "bin"
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = service_env(empty_pg_url, REDIS_URL=redis_server.url)
    env.pop("PYTHONPATH", None)

    where = run([str(bin_dir / "python"), "-c", "import payhook, payhook.migrations; "
                 "print(payhook.__file__); import worker"], cwd, env)
    assert where.stdout.strip().startswith(str(venv)), where.stdout
    assert "ModuleNotFoundError: No module named 'worker'" in where.stderr

    migrated = run([str(bin_dir / "payhook"), "migrate"], cwd, env)
    assert migrated.returncode == 0, migrated.stderr
    server = web(env, tmp_path / "web.log", bin_dir=bin_dir, cwd=cwd).start()
    drain = worker(env, tmp_path / "worker.log", bin_dir=bin_dir, cwd=cwd).start()
    try:
        headers = new_merchant(server.url)
        session_id = pay_one_session(server.url, headers)
        # The pages render from the installed package's templates and assets.
        assert "Admin token" in httpx.get(f"{server.url}/console/sign-in", timeout=10).text
        assert httpx.get(f"{server.url}/static/payhook.css", timeout=10).status_code == 200
        wait_for(lambda: query(empty_pg_url, "SELECT count(*) FROM invoices") == 1, 30,
                 "the invoice, made by the installed worker")
        wait_for(lambda: query(empty_pg_url, "SELECT count(*) FROM outbox_entries "
                                             "WHERE status <> 'done'") == 0, 30,
                 "every outbox row done")
        assert query(empty_pg_url, "SELECT count(*) FROM outbox_entries") > 0
        seen = httpx.get(f"{server.url}/v1/checkout/sessions/{session_id}", headers=headers,
                         timeout=10).json()
        assert seen["status"] == "paid" and seen["invoice_id"].startswith("in_")
    finally:
        code = drain.stop()
        server.stop()
    assert code == 0, drain.output()[-3000:]
    assert "Traceback" not in server.output() + drain.output()
    assert list(cwd.iterdir()) == []  # nothing read or written beside it

    # arq's own CLI on the same settings: it takes REDIS_URL when it starts (a nudge queued
    # on the test's Redis is consumed), though importing the module read nothing.
    asyncio.run(queue_a_nudge(redis_server.url))
    burst = run([str(bin_dir / "python"), "-m", "arq", "payhook.worker.WorkerSettings",
                 "--burst"], cwd, env)
    assert burst.returncode == 0, burst.stderr
    with redis.Redis.from_url(redis_server.url) as client:
        assert client.zcard("arq:queue") == 0  # not arq's default Redis: the test's


def pay_one_session(base: str, headers: dict[str, str]) -> str:
    with httpx.Client(base_url=base, timeout=10) as client:
        created = client.post("/v1/checkout/sessions", headers=headers,
                              json={"amount": 1999, "currency": "usd"})
        assert created.status_code == 201, created.text
        session_id = created.json()["id"]
        raw, signed = signing.signed("stripe", signing.stripe_event(session_id))
        answer = client.post("/webhooks/stripe", content=raw, headers=signed)
        assert answer.status_code == 200, answer.text
    return str(session_id)


async def queue_a_nudge(redis_url: str) -> None:
    from arq import create_pool
    from arq.connections import RedisSettings

    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        assert await pool.enqueue_job(DRAIN_JOB) is not None
    finally:
        await pool.aclose()


# Importing the worker, in a fresh process, an empty environment and an empty directory.
IMPORTS = {
    "payhook.worker": "import payhook.worker.supervisor, payhook.worker as module",
    "the checkout's shim": f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
                           "import worker as module",
}
# Any read of the settings would stop on this one.
UNREADABLE = {"PAYHOOK_WEBHOOK_TOLERANCE_SECONDS": "abc"}


@pytest.mark.parametrize("code", IMPORTS.values(), ids=IMPORTS.keys())
def test_importing_the_worker_reads_no_setting_and_writes_no_file(code, tmp_path):
    imported = run([sys.executable, "-c", code], tmp_path, {})
    assert imported.returncode == 0, imported.stderr
    assert list(tmp_path.iterdir()) == []
    imported = run([sys.executable, "-c", code], tmp_path, UNREADABLE)
    assert imported.returncode == 0, imported.stderr
    # The settings arq is given are read when it asks for them, from that environment.
    asked = run([sys.executable, "-c", f"{code}; module.WorkerSettings"], tmp_path, UNREADABLE)
    assert asked.returncode == 1 and "PAYHOOK_WEBHOOK_TOLERANCE_SECONDS" in asked.stderr
