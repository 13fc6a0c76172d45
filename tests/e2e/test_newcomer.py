"""A newcomer's first minutes: from a fresh clone, `make run` serves, and what it prints works."""

import json
import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import clean_environment, free_port, wait_until_up

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh_clone(tmp_path: Path) -> Path:
    target = tmp_path / "payhook"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(target)], check=True)
    return target


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_make_run_serves_and_its_instructions_work(fresh_clone: Path, tmp_path: Path):
    port = free_port()
    log = tmp_path / "make-run.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            ["make", "run", f"PORT={port}"], cwd=fresh_clone, env=clean_environment(),
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(f"{base}/healthz", 480, lambda: server.poll() is None)
        printed = log.read_text()

        key_command = next(line.strip() for line in printed.splitlines()
                           if "merchants create" in line)
        created = subprocess.run(shlex.split(key_command), cwd=fresh_clone, check=True,
                                 env=clean_environment(), capture_output=True, text=True)
        key = re.search(r"sk_test_\w+", created.stdout)
        assert key, created.stdout

        curl = next(line.strip() for line in printed.splitlines() if line.strip().startswith(
            "curl"))
        curl = curl.replace("sk_test_...", key.group())
        answer = subprocess.run(["bash", "-c", curl], check=True, capture_output=True, text=True)
        session = json.loads(answer.stdout)
        assert session["id"].startswith("cs_") and session["status"] == "created"

        # Step 3: a signed Stripe event pays it; the drain inside the web process does the rest.
        commands = [line.strip().replace("cs_...", session["id"]).replace(
            "sk_test_...", key.group()) for line in printed.splitlines()
            if "trigger stripe" in line or ("curl -s " in line and "cs_..." in line)]
        trigger, look = commands
        paid = subprocess.run(shlex.split(trigger), cwd=fresh_clone, env=clean_environment(),
                              capture_output=True, text=True)
        assert paid.returncode == 0 and json.loads(paid.stdout)["outcome"] == "applied", \
            paid.stderr
        deadline = time.monotonic() + 30
        while True:
            seen = json.loads(subprocess.run(["bash", "-c", look], check=True,
                                             capture_output=True, text=True).stdout)
            if seen["customer_access"] is not None or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert seen["status"] == "paid" and seen["invoice_id"].startswith("in_")
        assert seen["customer_access"]["url"].startswith(f"{base}/access/{session['id']}")
        access = httpx.get(seen["customer_access"]["url"], timeout=5).json()
        assert access["api_key"] is None  # the merchant has an active test key already

        # Tokens in query strings never reach the log (uvicorn's access log is replaced).
        httpx.get(f"{base}/access/{session['id']}?token=eyJnever-logged", timeout=5)
        httpx.get(f"{base}/healthz?token=eyJnever-logged", timeout=5)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    output = log.read_text()
    assert "eyJnever-logged" not in output and key.group() not in output
    assert (fresh_clone / "payhook.db").exists()
    request_lines = [json.loads(line) for line in output.splitlines()
                     if line.startswith("{") and '"payhook.access"' in line]
    assert any(entry.get("route") == "/v1/checkout/sessions" and entry["status"] == 201
               for entry in request_lines)
