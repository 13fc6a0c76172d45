"""``make bench-worker``: how fast ONE arq worker process turns paid sessions into all their
effects, beside the ingest rate of ONE web process, and the webhook-to-delivery latency at a
steady moderate rate (issue 4).

Everything is real and local: a fresh PostgreSQL database (payhook's migrations), a
``redis-server`` of the bench's own (free port, ``--save "" --appendonly no``), ``payhook serve``
with ``REDIS_URL`` (so it only nudges) and ``python -m worker`` as separate processes, an aiosmtpd
inbox (``tests/smtp_inbox.py``) as ``PAYHOOK_SMTP_URL``, and a loopback merchant endpoint served
by this process, registered through ``POST /v1/webhook_endpoints``, that verifies each delivery
with the ``standardwebhooks`` package, answers 200 at once and notes when it arrived. Sessions
are seeded with a customer e-mail, so a paid session is fully processed once it has its invoice,
the key check, its access link, the e-mail in the inbox and its signed ``checkout.session.paid``
delivery at the endpoint, and all its outbox rows are ``done``.

1. Throughput. With the worker NOT running, signed Stripe ``payment_intent.succeeded`` webhooks
   (``--warmup`` then ``--sessions``, ``--concurrency`` keep-alive connections, the load
   generator of ``bench/ingest.py``) pay distinct sessions: the measured part gives the ingest
   rate of one web process, and everything queues. Then the worker starts, and the clock runs
   from its first claim (start-up reported apart) until every queued session is fully processed.
   Reported: sessions/s, worker rate / ingest rate (issue 4's target >= 0.5, which moves with
   whatever else shares the two cores), and the CPU ratio that replaced it (issue 14): worker
   CPU per fully processed session / web CPU per ingested webhook, same run (target <= 2.0).
2. Latency. With the worker running, webhooks are sent open-loop at ``--rate`` per second for
   ``--duration`` seconds; for each session, the time from writing its webhook to the endpoint
   receiving its delivery. Targets: p50 <= 50 ms, p99 <= 250 ms. The outbox rows' ``done``
   times break that down by step.
3. Client floor. ``bench/floor.py``, in a process of its own, makes POSTs (the worker's client
   and plain httpx) to the same endpoint and sends aiosmtplib messages to the same inbox, as
   the worker does for each
   session: their CPU alone bounds what any worker on this stack could do per core.

    .venv/bin/python -m bench.worker [--sessions 2000] [--rate 30] [--duration 20]
                                     [--profile worker.svg] [--json]

Exit status: 0 when every check passes and every target is met; 1 when a check fails (a
webhook not applied, a delivery or e-mail missing or duplicated, an outbox row not done, the
worker not exiting cleanly); 2 when all checks pass but a target is missed. Processes, the
Redis server and the database are stopped and dropped at the end, on errors and on Ctrl-C.
"""

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
from redis.asyncio import Redis
from sqlalchemy.engine import make_url
from standardwebhooks.webhooks import Webhook

from bench.common import (
    ADMIN_TOKEN,
    BIN,
    Phase,
    Server,
    add_admin_url,
    build_requests,
    create_database,
    database_url,
    drop_database,
    finite,
    log,
    payhook_env,
    percentile,
    postgres_cpu,
    read_response,
    run_bench,
    seed_sessions,
    send,
    server_version,
    session_id,
)

TARGET_RATIO = 0.5  # sessions/s over webhooks/s: depends on what else the two cores run
# Issue 14's restatement, measured in one run: worker CPU per fully processed paid session over
# web CPU per ingested webhook (stretch 1.5).
TARGET_CPU_RATIO = 2.0
TARGET_P50_MS = 50.0
TARGET_P99_MS = 250.0
PAID = "checkout.session.paid"


# --- the merchant's endpoint ----------------------------------------------------------------

@dataclass
class Endpoint:
    """``POST /hook`` on a loopback port: verify (Standard Webhooks), note, answer 200."""

    port: int = 0
    webhook: Webhook | None = None
    paid: dict[str, float] = field(default_factory=dict)  # session id -> first arrival
    duplicates: Counter[str] = field(default_factory=Counter)
    other_types: Counter[str] = field(default_factory=Counter)
    rejected: list[str] = field(default_factory=list)
    server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name:
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                arrived = time.perf_counter()
                status = self._receive(headers, body, arrived)
                writer.write(b"HTTP/1.1 %d %s\r\nContent-Length: 2\r\n\r\nok"
                             % (status, b"OK" if status == 200 else b"Bad Request"))
                if headers.get("connection", "").lower() == "close":
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    def _receive(self, headers: dict[str, str], body: bytes, arrived: float) -> int:
        try:
            assert self.webhook is not None, "the endpoint's secret is not known yet"
            event = self.webhook.verify(body, headers)
        except Exception as error:  # noqa: BLE001 - standardwebhooks raises several kinds
            self.rejected.append(repr(error)[:200])
            return 400
        if event["type"] != PAID:
            self.other_types[event["type"]] += 1
            return 200
        session = event["data"]["session"]["id"]
        if session in self.paid:
            self.duplicates[session] += 1
        else:
            self.paid[session] = arrived
        return 200


# --- the worker process ---------------------------------------------------------------------

class Worker(Server):
    """``python -m worker`` (what ``payhook worker`` runs): the supervised arq worker."""

    def command(self, admin_url: str) -> tuple[list[str], dict[str, str]]:
        return [sys.executable, "-m", "worker"], {**payhook_env(admin_url, self.database),
                                                  **self.env}


class Profiler:
    """``py-spy record`` on a running process until :meth:`stop`, written to ``path``."""

    def __init__(self, pid: int, path: Path):
        fmt = {".svg": "flamegraph", ".json": "speedscope"}.get(path.suffix, "raw")
        self.path = path
        self.process = subprocess.Popen(
            [str(BIN / "py-spy"), "record", "--pid", str(pid), "--output", str(path),
             "--format", fmt, "--rate", "1000", "--nonblocking"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.returncode not in (0, -signal.SIGINT) and self.process.stderr:
            log(f"py-spy: {self.process.stderr.read().decode(errors='replace')[-500:]}")
        else:
            log(f"worker profile written to {self.path}")


# --- database -------------------------------------------------------------------------------

OUTBOX_LEFT = "SELECT count(*) FROM outbox_entries WHERE status <> 'done'"
ANY_CLAIMED = "SELECT EXISTS (SELECT 1 FROM outbox_entries WHERE status <> 'pending')"
# PostgreSQL's cumulative statistics for this database (flushed by each backend at most once a
# second, at once when it disconnects): enough to tell transactions and table scans per session.
DB_STATS = """
SELECT d.sessions, d.xact_commit + d.xact_rollback AS transactions,
       t.seq_scan AS outbox_seq_scans, t.seq_tup_read AS outbox_seq_rows
FROM pg_stat_database d, pg_stat_user_tables t
WHERE d.datname = current_database() AND t.relname = 'outbox_entries'
"""
COUNTS = """
SELECT (SELECT count(*) FROM checkout_sessions WHERE status = 'paid') AS paid_sessions,
       (SELECT count(*) FROM invoices) AS invoices,
       (SELECT count(DISTINCT session_id) FROM invoices) AS invoiced_sessions,
       (SELECT count(*) FROM checkout_sessions
         WHERE status = 'paid' AND customer_access_url IS NULL) AS without_link,
       (SELECT count(*) FROM checkout_sessions
         WHERE status = 'paid' AND email_sent_at IS NULL) AS without_email,
       (SELECT count(*) FROM api_keys WHERE provisioned_for IS NOT NULL) AS provisioned_keys,
       (SELECT count(*) FROM deliveries WHERE status = 'delivered') AS delivered,
       (SELECT count(*) FROM deliveries WHERE status <> 'delivered') AS undelivered,
       (SELECT count(*) FROM outbox_entries WHERE status <> 'done') AS outbox_not_done,
       (SELECT count(*) FROM outbox_entries) AS outbox_rows
"""
# The time each of a session's outbox rows was settled done (updated_at of a done row).
DONE_TIMES = """
SELECT payload->>'session_id' AS session_id, kind,
       extract(epoch FROM updated_at)::float8 AS done_at
FROM outbox_entries WHERE status = 'done' AND payload->>'session_id' = ANY($1::text[])
"""
STEPS = (("invoice.create", "invoice"), ("api_key.provision", "key check"),
         ("access_link.issue", "access link"), ("merchant.notify", "notify (event made)"),
         ("delivery.send", "delivery.send done"), ("email.send", "e-mail sent"))


async def poll_until(conn: asyncpg.Connection, sql: str, done: Any, interval: float,
                     timeout: float, what: str, watch: list[Server]) -> float:
    """Poll ``sql`` until ``done(value)``; the perf_counter time it was first seen."""
    deadline = time.perf_counter() + timeout
    while True:
        for process in watch:
            process.check_alive()
        if done(await conn.fetchval(sql)):
            return time.perf_counter()
        if time.perf_counter() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(interval)


# --- phases ---------------------------------------------------------------------------------

@dataclass
class Drain:
    sessions: int
    queued_jobs: int
    startup: float  # worker spawned -> first row claimed
    elapsed: float  # first row claimed -> every session fully processed
    worker_cpu: float  # CPU seconds over ``elapsed``, as the next two
    db_cpu: float
    bench_cpu: float
    db_stats: dict[str, int]  # DB_STATS over ``elapsed``


async def wait_processed(endpoint: Endpoint, inbox: Any, expected: set[str],
                         conn: asyncpg.Connection, timeout: float, watch: list[Server],
                         progress: bool = False) -> float:
    """Until every expected session's delivery and e-mail arrived and no outbox row is left
    undone; the perf_counter time that was first seen."""
    deadline = time.perf_counter() + timeout
    last_report = time.perf_counter()
    while len(expected.intersection(endpoint.paid)) < len(expected) \
            or len(inbox.envelopes) < len(expected):
        for process in watch:
            process.check_alive()
        now = time.perf_counter()
        if now > deadline:
            raise RuntimeError(
                f"timed out after {timeout:.0f} s: {len(expected.intersection(endpoint.paid))}"
                f" of {len(expected)} deliveries, {len(inbox.envelopes)} e-mails")
        if progress and now - last_report >= 2:
            last_report = now
            log(f"  ... {len(endpoint.paid)} deliveries, {len(inbox.envelopes)} e-mails")
        await asyncio.sleep(0.005)
    return await poll_until(conn, OUTBOX_LEFT, lambda left: left == 0, 0.02,
                            max(5.0, deadline - time.perf_counter()), "every outbox row done",
                            watch)


async def drain_backlog(args: argparse.Namespace, worker: Worker, endpoint: Endpoint,
                        inbox: Any, redis: Redis, conn: asyncpg.Connection, log_dir: Path,
                        backlog: int, web: Server) -> Drain:
    queued = int(await redis.zcard("arq:queue"))
    log(f"starting the worker on {backlog} queued paid sessions ({queued} arq nudge jobs "
        "queued)")
    spawned = time.perf_counter()
    worker.start(args.admin_url, log_dir)
    assert worker.process is not None
    profiler = Profiler(worker.process.pid, Path(args.profile)) if args.profile else None
    try:
        first = await poll_until(conn, ANY_CLAIMED, bool, 0.005, 60, "the worker's first claim",
                                 [worker, web])
        # CPU from here on: the worker's start-up (imports, connections) is not a session's.
        worker_cpu, db_cpu, bench_cpu = (worker.cpu_seconds(), postgres_cpu(),
                                         time.process_time())
        stats = await conn.fetchrow(DB_STATS)
        expected = {session_id(index) for index in range(backlog)}
        finished = await wait_processed(endpoint, inbox, expected, conn,
                                        max(120.0, backlog / 5), [worker, web], progress=True)
        worker_cpu = worker.cpu_seconds() - worker_cpu
        db_cpu, bench_cpu = postgres_cpu() - db_cpu, time.process_time() - bench_cpu
        after = await conn.fetchrow(DB_STATS)
        stats = {name: after[name] - stats[name] for name in after.keys()}
    finally:
        if profiler is not None:
            profiler.stop()
    return Drain(sessions=backlog, queued_jobs=queued, startup=first - spawned,
                 elapsed=finished - first, worker_cpu=worker_cpu, db_cpu=db_cpu,
                 bench_cpu=bench_cpu, db_stats=stats)


@dataclass
class Paced:
    sent: dict[str, float] = field(default_factory=dict)  # session id -> perf_counter at write
    wall: dict[str, float] = field(default_factory=dict)  # session id -> time.time() at write
    phase: Phase = field(default_factory=Phase)
    behind: float = 0.0  # the most the sender fell behind its schedule, in seconds
    retried: int = 0  # requests sent again after the server closed an idle connection


async def paced(port: int, requests: list[bytes], ids: list[str], rate: float) -> Paced:
    """Open loop: request i is written at start + i/rate whatever the answers before it do,
    over an idle keep-alive connection (a new one when none is idle)."""
    result = Paced()
    result.phase.requests = len(requests)
    idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(4)]

    async def one(request: bytes, sid: str) -> None:
        result.wall[sid] = time.time()
        result.sent[sid] = started = time.perf_counter()
        for attempt in (1, 2):
            reused = bool(idle)
            reader, writer = (idle.pop() if idle
                              else await asyncio.open_connection("127.0.0.1", port))
            try:
                writer.write(request)
                status, body, close = await read_response(reader)
                break
            except (OSError, asyncio.IncompleteReadError, ValueError) as error:
                writer.close()
                # The server may close an idle keep-alive connection just as a request is
                # written on it (uvicorn's keep-alive timeout): a provider sends again, and so
                # do we, once, on a new connection — the webhook is idempotent. Counted only
                # if that fails too, so a lost webhook shows as an error, not a missing delivery.
                if attempt == 1 and reused:
                    result.retried += 1
                    continue
                result.phase.errors[type(error).__name__] += 1
                return
        result.phase.latencies.append(time.perf_counter() - started)
        result.phase.record(status, body)
        if close:
            writer.close()
        else:
            idle.append((reader, writer))

    tasks = []
    start = time.perf_counter()
    for index, (request, sid) in enumerate(zip(requests, ids, strict=True)):
        delay = start + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            result.behind = max(result.behind, -delay)
        tasks.append(asyncio.create_task(one(request, sid)))
    await asyncio.gather(*tasks)
    result.phase.elapsed = time.perf_counter() - start
    for _, writer in idle:
        writer.close()
    return result


async def step_times(conn: asyncpg.Connection, run: Paced) -> dict[str, list[float]]:
    """For each step, the ms from writing a session's webhook to that row being done."""
    rows = await conn.fetch(DONE_TIMES, list(run.wall))
    steps: dict[str, list[float]] = {kind: [] for kind, _ in STEPS}
    for row in rows:
        if row["kind"] in steps:
            steps[row["kind"]].append((row["done_at"] - run.wall[row["session_id"]]) * 1000)
    return steps


# --- report ---------------------------------------------------------------------------------

def ms(values: list[float], q: float) -> float:
    return round(percentile(sorted(values), q) * 1000, 1)


def render(meta: dict[str, Any], results: dict[str, Any]) -> str:
    ingest, drain, latency = results["ingest"], results["drain"], results["latency"]
    floor = results["floor"]
    lines = [
        "bench-worker: paid sessions through one arq worker process (invoice, key check, "
        "access link, e-mail, signed delivery)",
        f"  web   : {meta['web']}",
        f"  worker: {meta['worker']}",
        f"  around: PostgreSQL {meta['postgresql']} (fresh database), redis-server "
        f"{meta['redis']} (own, port {meta['redis_port']}), aiosmtpd inbox and a loopback "
        "endpoint (standardwebhooks verify, 200) in this process",
        f"  {meta['cpus']} CPUs shared by web, worker, PostgreSQL, Redis and this process "
        "(load generator, endpoint, inbox): compare within this run only",
        "",
        f"1. throughput ({ingest['concurrency']} keep-alive connections for ingest; worker "
        "stopped while the webhooks queue)",
        f"  ingest, 1 web process : {ingest['requests']} webhooks in {ingest['seconds']:.2f} s "
        f"= {ingest['rps']:.0f} webhooks/s (p50 {ingest['p50_ms']:.1f} ms, p99 "
        f"{ingest['p99_ms']:.1f} ms; web cpu {ingest['app_cpu_ms']:.2f} ms, db cpu "
        f"{ingest['db_cpu_ms']:.2f} ms per webhook; {ingest['errors']} errors)",
        f"  worker, 1 process     : {drain['sessions']} queued sessions fully processed in "
        f"{drain['seconds']:.2f} s from its first claim = {drain['rate']:.0f} sessions/s "
        f"(start-up to first claim {drain['startup_s']:.2f} s; with it "
        f"{drain['rate_with_startup']:.0f} sessions/s)",
        f"                          cpu per session: worker {drain['worker_cpu_ms']:.2f} ms "
        f"({drain['worker_cpu_share']:.0%} of one core over the drain), PostgreSQL "
        f"{drain['db_cpu_ms']:.2f} ms (all its processes, other clients' too), this process "
        f"{drain['bench_cpu_ms']:.2f} ms; "
        f"{drain['queued_jobs']} arq nudge jobs were queued",
        f"                          PostgreSQL meanwhile: {drain['connections_opened']} "
        f"connections opened, {drain['transactions_per_session']:.1f} transactions and "
        f"{drain['outbox_seq_scans_per_session']:.2f} sequential scans of outbox_entries "
        f"({drain['outbox_seq_rows_per_session']:.0f} rows read) per session",
        f"  ratio worker/ingest   : {results['ratio']:.2f} sessions/s per webhook/s (the "
        f"issue-4 target >= {TARGET_RATIO}: "
        f"{'met' if results['ratio'] >= TARGET_RATIO else 'missed'}; it counts what else "
        "shares the cores)",
        f"  cpu ratio             : worker {drain['worker_cpu_ms']:.2f} ms per session / web "
        f"{ingest['app_cpu_ms']:.2f} ms per webhook = {results['cpu_ratio']:.2f} (target <= "
        f"{TARGET_CPU_RATIO:g}, stretch 1.5) -> "
        f"{'met' if results['cpu_ratio'] <= TARGET_CPU_RATIO else 'MISSED'}",
        f"  client floor          : one POST {floor['post_us']} us (the worker's, straight to "
        f"aiohttp; httpx's API over aiohttp {floor['httpx_api_post_us']} us, httpx's own "
        f"{floor['httpx_post_us']} us) + one aiosmtplib "
        f"message {floor['mail_us']} us of CPU (bench/floor.py, a process of their own) = "
        f"{floor['per_session_ms']:.2f} ms per session before any other work: one core could "
        f"do at most {floor['one_core_sessions_per_s']} sessions/s, a ratio of at most "
        f"{floor['ratio_ceiling']:.2f}",
        "",
        f"2. latency: {latency['sessions']} webhooks open-loop at {latency['rate']:g}/s for "
        f"{latency['duration']:g} s ({latency['rate'] / drain['rate']:.0%} of the worker's "
        f"throughput above), worker running (sender at most {latency['behind_ms']:.1f} ms "
        f"behind schedule; {latency['retried']} sent again on a new connection)",
        f"  webhook answered (ingest)      : p50 {latency['ingest_p50_ms']:8.1f} ms  p99 "
        f"{latency['ingest_p99_ms']:8.1f} ms",
        f"  webhook -> delivery received   : p50 {latency['p50_ms']:8.1f} ms  p99 "
        f"{latency['p99_ms']:8.1f} ms  max {latency['max_ms']:.1f} ms  (targets p50 <= "
        f"{TARGET_P50_MS:g}, p99 <= {TARGET_P99_MS:g}) -> "
        f"p50 {'met' if latency['p50_ms'] <= TARGET_P50_MS else 'MISSED'}, "
        f"p99 {'met' if latency['p99_ms'] <= TARGET_P99_MS else 'MISSED'}",
        "  where it goes, webhook written -> outbox row done (PostgreSQL clock vs this one):",
    ]
    for kind, label in STEPS:
        step = latency["steps"][kind]
        lines.append(f"    {label:<28} : p50 {step['p50_ms']:8.1f} ms  p99 "
                     f"{step['p99_ms']:8.1f} ms  ({step['rows']} rows)")
    lines.append("")
    for name, check in results["checks"].items():
        lines.append(f"check {name}: {check['detail']} -> {'ok' if check['ok'] else 'FAILED'}")
    return "\n".join(lines)


# --- main -----------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench-worker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=2000,
                        help="measured webhooks queued for the worker (default 2000)")
    parser.add_argument("--warmup", type=int, default=200,
                        help="web warm-up webhooks before measuring ingest (default 200); "
                             "they queue too and the worker processes them with the rest")
    parser.add_argument("--concurrency", type=int, default=16,
                        help="ingest connections (default 16)")
    parser.add_argument("--rate", type=float, default=20.0,
                        help="webhooks per second in the latency phase (default 20)")
    parser.add_argument("--duration", type=float, default=20.0,
                        help="seconds of the latency phase (default 20)")
    add_admin_url(parser)
    parser.add_argument("--profile", metavar="PATH",
                        help="py-spy the worker during the throughput phase into PATH "
                             "(.svg flamegraph, .json speedscope, else raw collapsed stacks)")
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the web and worker logs (their directory is printed)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if min(args.sessions, args.concurrency) < 1 or args.warmup < 0:
        parser.error("--sessions and --concurrency must be >= 1, --warmup >= 0")
    if args.rate <= 0 or args.duration <= 0 or args.rate * args.duration < 1:
        parser.error("--rate and --duration must be > 0 and make at least one webhook")
    return args


async def setup_merchant(web: Server, endpoint: Endpoint) -> str:
    """A merchant (with its test key, so the key step is a check) and its endpoint."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}", timeout=10) as client:
        created = await client.post("/admin/merchants", json={"name": "bench"},
                                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        created.raise_for_status()
        merchant = created.json()
        hook = await client.post("/v1/webhook_endpoints", json={"url": endpoint.url}, headers={
            "Authorization": f"Bearer {merchant['api_key']['secret']}"})
        if hook.status_code != 201:
            raise RuntimeError(f"registering the endpoint: {hook.status_code} {hook.text}")
        endpoint.webhook = Webhook(hook.json()["secret"])
    return str(merchant["id"])


def summary(phase: Phase, cpu_of: int) -> dict[str, Any]:
    return {
        "requests": phase.requests, "seconds": round(phase.elapsed, 3),
        "rps": round(phase.requests / phase.elapsed, 1) if phase.elapsed else 0.0,
        "p50_ms": ms(phase.latencies, 0.5), "p99_ms": ms(phase.latencies, 0.99),
        "app_cpu_ms": round(phase.app_cpu * 1000 / cpu_of, 3),
        "db_cpu_ms": round(phase.db_cpu * 1000 / cpu_of, 3),
        "errors": sum(phase.errors.values()), "error_kinds": dict(phase.errors),
        "error_samples": phase.samples,
    }


async def bench(args: argparse.Namespace) -> int:
    from tests.e2e.processes import RedisServer
    from tests.smtp_inbox import running_inbox

    tag = f"w{os.getpid()}"
    database = f"bench_worker_{os.getpid()}"
    backlog = args.warmup + args.sessions
    steady = max(1, round(args.rate * args.duration))
    log_dir = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    endpoint = Endpoint()
    web = Server("payhook", "payhook serve (1 uvicorn process, uvloop + httptools), REDIS_URL "
                 "set: ingest and nudge the worker", database)
    worker = Worker("worker", "python -m worker (supervised arq worker, WORKER_OPTIONS of "
                    "worker/__init__.py), PAYHOOK_SMTP_URL and PAYHOOK_ALLOW_PRIVATE_URLS "
                    "set", database)
    redis_server: RedisServer | None = None
    created = False
    if shutil.which("redis-server") is None:
        log("bench-worker needs redis-server: apt-get install redis-server")
        return 1
    with contextlib.ExitStack() as stack:
        try:
            version = await server_version(args.admin_url)
            log(f"creating {database} (migrations)")
            created = True
            await create_database(args.admin_url, database)
            redis_server = RedisServer(log_dir).start()
            inbox = stack.enter_context(running_inbox())
            await endpoint.start()
            env = {"REDIS_URL": redis_server.url, "PAYHOOK_SMTP_URL": inbox.url,
                   "PAYHOOK_ALLOW_PRIVATE_URLS": "true"}
            web.env = env
            web.start(args.admin_url, log_dir)
            await web.wait_ready()
            # The worker signs the access links: point them at the web process.
            worker.env = {**env, "PAYHOOK_PUBLIC_BASE_URL": f"http://127.0.0.1:{web.port}"}
            merchant = await setup_merchant(web, endpoint)
            log(f"seeding {backlog + steady} sessions with customer e-mails")
            await seed_sessions(args.admin_url, database, merchant, backlog + steady,
                                emails=True)
            conn = await asyncpg.connect(database_url(args.admin_url, database))
            redis = Redis(port=redis_server.port)
            try:
                results = await measure(args, tag, web, worker, endpoint, inbox, redis, conn,
                                        log_dir, backlog, steady)
            finally:
                await redis.aclose()
                await conn.close()
            results["floor"] = await client_floor(endpoint, inbox, results["ingest"]["rps"])
            code = worker.stop()
            results["checks"]["worker exit"] = {
                "ok": code == 0, "detail": f"SIGTERM -> exit code {code}"}
            web.stop()
            meta = {"web": web.describe, "worker": worker.describe, "postgresql": version,
                    "database": make_url(args.admin_url).render_as_string(),
                    "redis": redis_version(), "redis_port": redis_server.port,
                    "cpus": os.cpu_count()}
            if args.json:
                print(json.dumps(finite({"meta": meta, **results}), indent=2))
            else:
                print(render(meta, results))
            if not all(check["ok"] for check in results["checks"].values()):
                return 1
            return 0 if all(results["targets"].values()) else 2
        except RuntimeError as error:
            log(f"bench-worker failed: {error}")
            for process in (web, worker):
                if process.log_path is not None:
                    log(f"--- {process.name} log (tail) ---\n{process.log_tail(30)}")
            return 1
        finally:
            worker.stop()
            web.stop()
            await endpoint.stop()
            if redis_server is not None:
                redis_server.stop()
            if created:
                try:
                    await drop_database(args.admin_url, database)
                except (OSError, asyncpg.PostgresError) as error:
                    log(f"could not drop {database}: {error}")
            if args.keep_logs:
                log(f"logs kept in {log_dir}")
            else:
                for path in log_dir.iterdir():
                    path.unlink()
                log_dir.rmdir()


async def client_floor(endpoint: Endpoint, inbox: Any, ingest_rps: float) -> dict[str, Any]:
    """``bench/floor.py`` against this run's endpoint and inbox (after the checks: its calls
    are not sessions'): the CPU of a session's POST and message alone, and the most one core
    could then do — the ceiling of any worker on this stack, beside the ingest rate."""
    smtp = urlsplit(inbox.url)
    log("client floor: POSTs and aiosmtplib messages alone (bench/floor.py)")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.floor", "--http", endpoint.url,
        "--smtp", f"{smtp.hostname}:{smtp.port}", stdout=subprocess.PIPE)
    output, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"bench/floor.py exited with {process.returncode}")
    floor = json.loads(output)
    per_session_ms = (floor["post_us"] + floor["mail_us"]) / 1000
    ceiling = 1000 / per_session_ms
    return {**floor, "per_session_ms": round(per_session_ms, 3),
            "one_core_sessions_per_s": round(ceiling),
            "ratio_ceiling": round(ceiling / ingest_rps, 3) if ingest_rps else math.nan}


def redis_version() -> str:
    answer = subprocess.run(["redis-server", "--version"], capture_output=True, text=True)
    words = answer.stdout.split()
    return next((w.split("=", 1)[1] for w in words if w.startswith("v=")), "?")


async def measure(args: argparse.Namespace, tag: str, web: Server, worker: Worker,
                  endpoint: Endpoint, inbox: Any, redis: Redis, conn: asyncpg.Connection,
                  log_dir: Path, backlog: int, steady: int) -> dict[str, Any]:
    # 1. Ingest with the worker stopped: everything queues.
    if args.warmup:
        log(f"ingest warm-up: {args.warmup} webhooks")
        warm = await send(web, args.warmup, args.concurrency, tag)
        if warm.errors:
            raise RuntimeError(f"warm-up failed: {dict(warm.errors)} {warm.samples[:1]}")
    log(f"ingest: {args.sessions} webhooks at concurrency {args.concurrency}, worker stopped")
    ingest = await send(web, args.sessions, args.concurrency, tag)
    drain = await drain_backlog(args, worker, endpoint, inbox, redis, conn, log_dir, backlog,
                                web)
    backlog_ok = len(set(endpoint.paid)) == backlog

    # 2. Latency with the worker running.
    log(f"latency: {steady} webhooks at {args.rate:g}/s")
    ids = [session_id(index) for index in range(web.next_session, web.next_session + steady)]
    requests = build_requests(web.port, web.next_session, steady, tag)
    web.next_session += steady
    web.sent += steady
    run = await paced(web.port, requests, ids, args.rate)
    if run.phase.errors:
        raise RuntimeError(f"{sum(run.phase.errors.values())} latency-phase webhooks got no "
                           f"answer: {dict(run.phase.errors)}")
    await wait_processed(endpoint, inbox, set(ids) | set(endpoint.paid), conn, 60,
                         [worker, web])
    latencies = [endpoint.paid[sid] - run.sent[sid] for sid in ids if sid in endpoint.paid]
    steps = await step_times(conn, run)
    counts = dict(await conn.fetchrow(COUNTS))
    total = web.sent

    ingest_summary = summary(ingest, ingest.requests)
    ingest_summary["concurrency"] = args.concurrency
    rate = drain.sessions / drain.elapsed
    drain_summary = {
        "sessions": drain.sessions, "seconds": round(drain.elapsed, 3),
        "rate": round(rate, 1), "startup_s": round(drain.startup, 3),
        "rate_with_startup": round(drain.sessions / (drain.elapsed + drain.startup), 1),
        "worker_cpu_ms": round(drain.worker_cpu * 1000 / drain.sessions, 3),
        "worker_cpu_share": round(drain.worker_cpu / drain.elapsed, 3),
        "db_cpu_ms": round(drain.db_cpu * 1000 / drain.sessions, 3),
        "bench_cpu_ms": round(drain.bench_cpu * 1000 / drain.sessions, 3),
        "queued_jobs": drain.queued_jobs,
        "connections_opened": drain.db_stats["sessions"],
        "transactions_per_session": round(drain.db_stats["transactions"] / drain.sessions, 1),
        "outbox_seq_scans_per_session": round(drain.db_stats["outbox_seq_scans"]
                                              / drain.sessions, 2),
        "outbox_seq_rows_per_session": round(drain.db_stats["outbox_seq_rows"]
                                             / drain.sessions),
    }
    ratio = round(rate / ingest_summary["rps"], 3) if ingest_summary["rps"] else math.nan
    web_cpu = ingest_summary["app_cpu_ms"]
    cpu_ratio = round(drain_summary["worker_cpu_ms"] / web_cpu, 3) if web_cpu else math.nan
    latency = {
        "sessions": steady, "rate": args.rate, "duration": args.duration,
        "behind_ms": round(run.behind * 1000, 1), "retried": run.retried,
        "ingest_p50_ms": ms(run.phase.latencies, 0.5),
        "ingest_p99_ms": ms(run.phase.latencies, 0.99),
        "p50_ms": ms(latencies, 0.5), "p99_ms": ms(latencies, 0.99),
        "max_ms": round(max(latencies) * 1000, 1) if latencies else math.nan,
        "steps": {kind: {"rows": len(values), "p50_ms": round(percentile(sorted(values), 0.5), 1),
                         "p99_ms": round(percentile(sorted(values), 0.99), 1)}
                  for kind, values in steps.items()},
    }
    errors = sum(ingest.errors.values()) + sum(run.phase.errors.values())
    recipients = Counter(address for envelope in inbox.envelopes
                         for address in envelope.rcpt_tos)
    checks = {
        "webhooks": {"ok": errors == 0, "detail": f"{total} sent, {errors} not applied "
                     f"{dict(ingest.errors + run.phase.errors) or ''}".rstrip()},
        "deliveries": {
            "ok": (backlog_ok and len(endpoint.paid) == total and not endpoint.duplicates
                   and not endpoint.rejected and counts["delivered"] == total
                   and counts["undelivered"] == 0),
            "detail": f"{len(endpoint.paid)} of {total} sessions' {PAID} received and "
                      f"verified, {sum(endpoint.duplicates.values())} duplicates, "
                      f"{len(endpoint.rejected)} rejected, other types "
                      f"{dict(endpoint.other_types)}; deliveries delivered "
                      f"{counts['delivered']}, not delivered {counts['undelivered']}"},
        "e-mails": {
            "ok": (len(inbox.envelopes) == len(recipients) == total
                   and max(recipients.values(), default=0) == 1
                   and counts["without_email"] == 0),
            "detail": f"{len(inbox.envelopes)} messages to {len(recipients)} distinct "
                      f"customers for {total} sessions; sessions without email_sent_at "
                      f"{counts['without_email']}"},
        "effects": {
            "ok": (counts["paid_sessions"] == counts["invoices"] == counts["invoiced_sessions"]
                   == total and counts["without_link"] == 0
                   and counts["provisioned_keys"] == 0),
            "detail": f"paid sessions {counts['paid_sessions']}, invoices {counts['invoices']}"
                      f" ({counts['invoiced_sessions']} sessions), without access link "
                      f"{counts['without_link']}, keys provisioned {counts['provisioned_keys']}"
                      " (the merchant has an active test key)"},
        "outbox": {"ok": counts["outbox_not_done"] == 0 and counts["outbox_rows"] == 6 * total,
                   "detail": f"{counts['outbox_rows']} rows (6 per session expected), "
                             f"{counts['outbox_not_done']} not done"},
    }
    targets = {"cpu_ratio": cpu_ratio <= TARGET_CPU_RATIO,
               "p50": latency["p50_ms"] <= TARGET_P50_MS,
               "p99": latency["p99_ms"] <= TARGET_P99_MS}
    return {"ingest": ingest_summary, "drain": drain_summary, "ratio": ratio,
            "cpu_ratio": cpu_ratio,
            "latency": latency, "checks": checks, "targets": targets}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_bench(lambda: bench(args))


if __name__ == "__main__":
    sys.exit(main())
