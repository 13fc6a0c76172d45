"""The `payhook` command: merchants from the shell, and one clear line for a bad setting."""

import subprocess
import sys
from pathlib import Path

import httpx

from payhook.app import create_app
from tests.conftest import make_settings
from tests.e2e.conftest import clean_environment

PAYHOOK = str(Path(sys.executable).with_name("payhook"))


def run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PAYHOOK, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=60)


async def test_merchants_create_prints_an_id_and_a_working_key(tmp_path, pg_url):
    env = {**clean_environment(), "DATABASE_URL": pg_url,
           "PAYHOOK_SECRET_KEY": make_settings(pg_url).require_secret(),
           "PAYHOOK_ADMIN_TOKEN": make_settings(pg_url).require_admin_token()}
    created = run("merchants", "create", "Corner shop", env=env, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    lines = dict(line.rsplit(" ", 1) for line in created.stdout.splitlines())
    assert lines["merchant"].startswith("mer_") and lines["test key"].startswith("sk_test_")

    app = create_app(make_settings(pg_url))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://t") as client:
            answer = await client.post("/v1/checkout/sessions", json={
                "amount": 1, "currency": "usd"},
                headers={"Authorization": f"Bearer {lines['test key']}"})
    assert answer.status_code == 201


def test_a_bad_setting_stops_with_one_line_naming_it(tmp_path):
    env = {**clean_environment(), "DATABASE_URL": "postgresql://postgres@127.0.0.1/x"}
    result = run("migrate", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "PAYHOOK_SECRET_KEY" in result.stderr and "Traceback" not in result.stderr
    env["PAYHOOK_WEBHOOK_TOLERANCE_SECONDS"] = "abc"
    result = run("serve", env=env, cwd=tmp_path)
    assert result.returncode == 2 and "PAYHOOK_WEBHOOK_TOLERANCE_SECONDS" in result.stderr


def test_outbox_commands_list_show_and_replay(tmp_path, pg_url):
    import asyncio
    import json

    from payhook import clock
    from payhook.db.engine import create_engine
    from payhook.db.tables import outbox_entries
    from payhook.outbox import store

    async def add_dead() -> str:
        entry = store.new_entry("delivery.send", {"session_id": "cs_1"}, clock.now(), 2)
        entry.update(status="dead", attempts=2, last_error="HTTP 503")
        engine = create_engine(pg_url)
        async with engine.begin() as conn:
            await conn.execute(outbox_entries.insert().values(entry))
        await engine.dispose()
        return entry["id"]

    dead = asyncio.run(add_dead())
    env = {**clean_environment(), "DATABASE_URL": pg_url,
           "PAYHOOK_SECRET_KEY": make_settings(pg_url).require_secret(),
           "PAYHOOK_ADMIN_TOKEN": make_settings(pg_url).require_admin_token()}
    listed = json.loads(run("outbox", "list", "--status", "dead", env=env, cwd=tmp_path).stdout)
    assert [e["id"] for e in listed["data"]] == [dead]
    shown = json.loads(run("outbox", "show", dead, env=env, cwd=tmp_path).stdout)
    assert shown["last_error"] == "HTTP 503"
    dry = json.loads(run("outbox", "replay", "--all-dead", "--dry-run", env=env,
                         cwd=tmp_path).stdout)
    assert dry["would_replay"] == [dead]
    replayed = run("outbox", "replay", dead, "--reason", "endpoint back", env=env, cwd=tmp_path)
    assert replayed.returncode == 0 and json.loads(replayed.stdout)["status"] == "pending"
    again = run("outbox", "replay", dead, env=env, cwd=tmp_path)
    assert again.returncode == 1 and "only dead entries" in again.stderr
    assert run("outbox", "replay", env=env, cwd=tmp_path).returncode == 2


async def test_keys_create_gives_a_merchant_a_new_working_key(tmp_path, pg_url):
    import json

    env = {**clean_environment(), "DATABASE_URL": pg_url,
           "PAYHOOK_SECRET_KEY": make_settings(pg_url).require_secret(),
           "PAYHOOK_ADMIN_TOKEN": make_settings(pg_url).require_admin_token()}
    created = run("merchants", "create", "Corner shop", env=env, cwd=tmp_path)
    merchant = dict(line.rsplit(" ", 1) for line in created.stdout.splitlines())["merchant"]

    live = run("keys", "create", "--merchant", merchant, "--mode", "live", "--label", "lost",
               env=env, cwd=tmp_path)
    assert live.returncode == 0, live.stderr
    lines = dict(line.rsplit(" ", 1) for line in live.stdout.splitlines())
    assert lines["key"].startswith("key_") and lines["live key"].startswith("sk_live_")
    assert lines["live key"] not in live.stderr
    shown = run("keys", "create", "--merchant", merchant, "--mode", "test", "--json",
                env=env, cwd=tmp_path)
    key = json.loads(shown.stdout)
    assert (key["object"], key["mode"], key["label"]) == ("api_key", "test", None)
    assert key["secret"].startswith("sk_test_")

    app = create_app(make_settings(pg_url))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://t") as client:
            for raw, mode in ((lines["live key"], "live"), (key["secret"], "test")):
                answer = await client.post("/v1/checkout/sessions", json={
                    "amount": 1, "currency": "usd"}, headers={"Authorization": f"Bearer {raw}"})
                assert answer.status_code == 201 and answer.json()["mode"] == mode
            listed = await client.get("/v1/api_keys", headers={
                "Authorization": f"Bearer {lines['live key']}"})
            assert [row["label"] for row in listed.json()["data"]] == ["lost"]

    unknown = run("keys", "create", "--merchant", "mer_unknown", "--mode", "live", env=env,
                  cwd=tmp_path)
    assert unknown.returncode == 1 and unknown.stderr.strip() == (
        "payhook: no such merchant: mer_unknown")
    too_long = run("keys", "create", "--merchant", merchant, "--mode", "live", "--label",
                   "x" * 201, env=env, cwd=tmp_path)
    assert too_long.returncode == 1 and "label" in too_long.stderr
    assert run("keys", "create", "--merchant", merchant, "--mode", "sandbox", env=env,
               cwd=tmp_path).returncode == 2


async def test_deliveries_list_shows_one_merchants_deliveries_by_status(tmp_path, pg_url):
    import json

    from sqlalchemy import update

    from payhook.db.tables import deliveries

    settings = make_settings(pg_url, allow_private_urls=True)
    env = {**clean_environment(), "DATABASE_URL": pg_url,
           "PAYHOOK_SECRET_KEY": settings.require_secret(),
           "PAYHOOK_ADMIN_TOKEN": settings.require_admin_token()}
    created = run("merchants", "create", "Corner shop", "--json", env=env, cwd=tmp_path)
    merchant = json.loads(created.stdout)
    headers = {"Authorization": f"Bearer {merchant['api_key']['secret']}"}
    app = create_app(settings, embedded_worker=False)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://t") as client:
            endpoint = (await client.post("/v1/webhook_endpoints", headers=headers,
                                          json={"url": "https://shop.invalid/hook"})).json()
            made = [(await client.post(f"/v1/webhook_endpoints/{endpoint['id']}/test",
                                       headers=headers)).json()["id"] for _ in range(2)]
        async with app.state.payhook.engine.begin() as conn:
            await conn.execute(update(deliveries).where(deliveries.c.id == made[0])
                               .values(status="failed"))

    failed = run("deliveries", "list", "--merchant", merchant["id"], "--status", "failed",
                 env=env, cwd=tmp_path)
    assert failed.returncode == 0, failed.stderr
    listed = json.loads(failed.stdout)
    assert [d["id"] for d in listed["data"]] == [made[0]] and not listed["has_more"]
    assert listed["data"][0]["event_type"] == "webhook_endpoint.test"
    every = json.loads(run("deliveries", "list", "--merchant", merchant["id"], "--mode", "test",
                           env=env, cwd=tmp_path).stdout)
    assert [d["id"] for d in every["data"]] == made[::-1]
    assert json.loads(run("deliveries", "list", "--merchant", merchant["id"], "--mode", "live",
                          env=env, cwd=tmp_path).stdout)["data"] == []
    bad = run("deliveries", "list", "--merchant", "shop", env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "merchant id" in bad.stderr
