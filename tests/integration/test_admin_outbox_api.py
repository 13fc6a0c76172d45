"""/admin/outbox: operators list, inspect and replay failed work, on the record."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from payhook import clock
from payhook.db.tables import outbox_entries, outbox_replays
from payhook.outbox import store
from tests.conftest import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def add(app, kind: str, status: str) -> str:
    entry = store.new_entry(kind, {"session_id": "cs_1"}, clock.now(), 3)
    entry.update(status=status)
    if status == "dead":
        entry.update(attempts=3, last_error="HTTP 500", errors=[
            {"attempt": n, "at": clock.now().isoformat(), "error": "HTTP 500"}
            for n in (1, 2, 3)])
    if status == "running":
        entry.update(attempts=1, locked_by="w1",
                     locked_until=clock.now() + timedelta(seconds=60))
    async with app.state.payhook.engine.begin() as conn:
        await conn.execute(outbox_entries.insert().values(entry))
    return entry["id"]


async def test_list_and_show_with_filters(client, app):
    dead = await add(app, "delivery.send", "dead")
    await add(app, "invoice.create", "done")
    await add(app, "delivery.send", "pending")
    listed = await client.get("/admin/outbox", params={"status": "dead"}, headers=ADMIN)
    assert listed.status_code == 200
    assert [e["id"] for e in listed.json()["data"]] == [dead]
    by_kind = await client.get("/admin/outbox", params={"kind": "delivery.send"}, headers=ADMIN)
    assert len(by_kind.json()["data"]) == 2
    shown = (await client.get(f"/admin/outbox/{dead}", headers=ADMIN)).json()
    assert shown["object"] == "outbox_entry" and shown["last_error"] == "HTTP 500"
    assert [e["attempt"] for e in shown["errors"]] == [1, 2, 3]
    assert (await client.get("/admin/outbox/ob_unknown", headers=ADMIN)).status_code == 404
    assert (await client.get("/admin/outbox", params={"status": "zombie"},
                             headers=ADMIN)).status_code == 400


async def test_replay_one_and_the_audit(client, app):
    dead = await add(app, "delivery.send", "dead")
    answer = await client.post(f"/admin/outbox/{dead}/replay", json={"reason": "fixed DNS"},
                               headers={**ADMIN, "X-Request-Id": "req-42"})
    assert answer.status_code == 200
    assert (answer.json()["status"], answer.json()["attempts"]) == ("pending", 0)
    async with app.state.payhook.engine.connect() as conn:
        audit = (await conn.execute(select(outbox_replays))).one()
    assert audit.entry_ids == [dead] and audit.reason == "fixed DNS"
    assert audit.actor.startswith("admin-api:") and audit.actor.endswith(":req-42")


@pytest.mark.parametrize("status", ["running", "pending", "done"])
async def test_replaying_a_live_row_is_a_conflict(client, app, status):
    entry = await add(app, "delivery.send", status)
    answer = await client.post(f"/admin/outbox/{entry}/replay", headers=ADMIN)
    assert answer.status_code == 409
    assert (await client.get(f"/admin/outbox/{entry}", headers=ADMIN)).json()["status"] == status


async def test_bulk_replay(client, app):
    deliveries = {await add(app, "delivery.send", "dead") for _ in range(3)}
    other = await add(app, "invoice.create", "dead")
    answer = await client.post("/admin/outbox/replay",
                               json={"status": "dead", "kind": "delivery.send"}, headers=ADMIN)
    assert answer.status_code == 200
    assert answer.json()["replayed"] == 3 and set(answer.json()["ids"]) == deliveries
    assert (await client.get(f"/admin/outbox/{other}", headers=ADMIN)).json()["status"] == "dead"
    everything = await client.post("/admin/outbox/replay", json={"status": "dead"},
                                   headers=ADMIN)
    assert everything.json()["replayed"] == 1


@pytest.mark.parametrize("body", [{}, {"status": "pending"}, {"status": "dead", "kind": ""},
                                  {"status": "dead", "extra": 1}])
async def test_bulk_replay_validation(client, body):
    answer = await client.post("/admin/outbox/replay", json=body, headers=ADMIN)
    assert answer.status_code == 400


async def test_merchants_cannot_touch_the_outbox(client, app, merchant):
    dead = await add(app, "delivery.send", "dead")
    for method, path in (("GET", "/admin/outbox"), ("GET", f"/admin/outbox/{dead}"),
                         ("POST", f"/admin/outbox/{dead}/replay"),
                         ("POST", "/admin/outbox/replay")):
        answer = await client.request(method, path, json={"status": "dead"} if
                                      method == "POST" else None, headers=merchant.headers)
        assert answer.status_code == 401
    assert (await client.get(f"/admin/outbox/{dead}", headers=ADMIN)).json()["status"] == "dead"
