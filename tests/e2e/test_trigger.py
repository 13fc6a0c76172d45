"""`payhook trigger` against the real service on the embedded default, and the operators'
`payhook events` / `payhook anomalies` commands reading what it left behind."""

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import wallet
from tests.e2e.conftest import clean_environment, free_port, wait_until_up

PAYHOOK = str(Path(sys.executable).with_name("payhook"))

pytestmark = pytest.mark.slow


@dataclass
class Service:
    base: str
    env: dict[str, str]
    cwd: Path
    key: str

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([PAYHOOK, *args], env=self.env, cwd=self.cwd,
                              capture_output=True, text=True, timeout=60)

    def trigger(self, provider: str, session_id: str, *options: str) -> Any:
        result = self.run("trigger", provider, "--session", session_id,
                          "--url", f"{self.base}/webhooks/{provider}", *options)
        assert result.returncode == 0, result.stderr + result.stdout
        assert "HTTP 200" in result.stderr
        return json.loads(result.stdout)

    def new_session(self, amount: int, currency: str) -> str:
        answer = httpx.post(f"{self.base}/v1/checkout/sessions", timeout=10,
                            headers={"Authorization": f"Bearer {self.key}"},
                            json={"amount": amount, "currency": currency})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    def session(self, session_id: str) -> Any:
        answer = httpx.get(f"{self.base}/v1/checkout/sessions/{session_id}", timeout=10,
                           headers={"Authorization": f"Bearer {self.key}"})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def json(self, *args: str) -> Any:
        result = self.run(*args)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)



@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """`payhook serve` on a fresh SQLite file, its webhook secrets generated beside it."""
    cwd = tmp_path_factory.mktemp("trigger")
    port = free_port()
    env = {**clean_environment(), "DATABASE_URL": f"sqlite+aiosqlite:///{cwd / 'payhook.db'}",
           "PAYHOOK_WEB3_XPUB": wallet.XPUB, "PAYHOOK_WEB3_CHAIN_ID": str(wallet.CHAIN_ID)}
    migrated = subprocess.run([PAYHOOK, "migrate"], env=env, cwd=cwd, capture_output=True,
                              text=True, timeout=60)
    assert migrated.returncode == 0, migrated.stderr
    with (cwd / "serve.log").open("wb") as log:
        server = subprocess.Popen([PAYHOOK, "serve", "--port", str(port)], env=env, cwd=cwd,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(f"{base}/healthz", 60, lambda: server.poll() is None)
        created = subprocess.run([PAYHOOK, "merchants", "create", "Trigger shop", "--json"],
                                 env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
        assert created.returncode == 0, created.stderr
        key = json.loads(created.stdout)["api_key"]["secret"]
        yield Service(base=base, env=env, cwd=cwd, key=key)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_stripe_trigger_pays_the_session(service):
    session_id = service.new_session(1999, "usd")
    assert service.trigger("stripe", session_id) == {"received": True, "outcome": "applied"}
    paid = service.session(session_id)
    assert (paid["status"], paid["payment_provider"]) == ("paid", "stripe")


def test_onecom_trigger_pays_the_session(service):
    session_id = service.new_session(4200, "dkk")
    assert service.trigger("onecom", session_id) == {"received": True, "outcome": "applied"}
    paid = service.session(session_id)
    assert (paid["status"], paid["payment_provider"]) == ("paid", "onecom")


def test_web3_trigger_moves_the_session_to_pending(service):
    session_id = service.new_session(10**15, "eth")
    tx = "0x" + "1f" * 32
    answer = service.trigger("web3", session_id, "--tx", tx)
    assert answer == {"received": True, "outcome": "applied"}
    assert service.session(session_id)["status"] == "pending"
    stored = service.json("events", "list", "--provider", "web3", "--limit", "1")["data"][0]
    assert stored["session_id"] == session_id and stored["event_id"].startswith("msg_")
    shown = service.json("events", "show", stored["id"])
    assert json.loads(shown["raw_body"])["blockchain_tx_id"] == tx


def test_events_and_anomalies_from_the_command_line(service):
    session_id = service.new_session(999, "usd")
    service.trigger("stripe", session_id)
    # A second payment for a paid session: a new event, recorded, with an anomaly.
    assert service.trigger("stripe", session_id)["outcome"] == "recorded"

    listed = service.json("events", "list", "--provider", "stripe", "--limit", "2")
    assert listed["object"] == "list"
    assert [e["outcome"] for e in listed["data"]] == ["recorded", "applied"]
    assert {e["session_id"] for e in listed["data"]} == {session_id}
    assert "raw_body" not in listed["data"][0]
    newest = listed["data"][0]

    shown = service.json("events", "show", newest["id"])
    assert json.loads(shown["raw_body"])["id"] == newest["event_id"]
    raw = subprocess.run([PAYHOOK, "events", "show", newest["id"], "--raw"], env=service.env,
                         cwd=service.cwd, capture_output=True, timeout=60)
    assert raw.returncode == 0 and raw.stdout == shown["raw_body"].encode()

    anomalies = service.json("anomalies", "list", "--kind", "duplicate_payment",
                             "--session", session_id)
    assert [(a["kind"], a["event_id"]) for a in anomalies["data"]] == [
        ("duplicate_payment", newest["id"])]
    assert service.json("anomalies", "list", "--session", "cs_none")["data"] == []


def test_failures_exit_non_zero_with_one_line(service):
    session_id = service.new_session(100, "usd")
    refused = service.run("trigger", "stripe", "--session", session_id,
                          "--url", f"{service.base}/webhooks/paypal")
    assert refused.returncode == 1 and "HTTP 404" in refused.stderr, refused.stderr
    assert json.loads(refused.stdout)["error"]["code"] == "resource_missing"

    unknown = service.run("trigger", "onecom", "--session", "cs_unknown")
    assert unknown.returncode == 1, unknown.stderr
    assert unknown.stderr.strip() == "payhook: no such checkout session: cs_unknown"

    bad_tx = service.run("trigger", "web3", "--session", session_id, "--tx", "0x12")
    assert bad_tx.returncode == 2 and "--tx" in bad_tx.stderr
    missing = service.run("events", "show", "ev_unknown")
    assert missing.returncode == 1 and "no such event" in missing.stderr
    bad_kind = service.run("anomalies", "list", "--kind", "Not A Kind")
    assert bad_kind.returncode == 1 and "kind" in bad_kind.stderr
    assert service.run("events", "list", "--outcome", "done").returncode == 2  # argparse
    assert service.session(session_id)["status"] == "created"
