"""``make bench-ingest``: payhook's Stripe webhook ingest against a bare Starlette + raw asyncpg
app doing the same five statements, in the same run, on the same PostgreSQL (issue 3).

Each server gets a fresh database (migrated with payhook's migrations, one merchant and one
``created`` session per request the run will send) and runs as its own uvicorn process
(uvloop + httptools, one process, no access log). This process is the load generator: raw
asyncio streams over keep-alive HTTP/1.1 connections, pre-built signed requests, one distinct
session per request. For each concurrency the two servers take turns (A B B A …) so drift on
this shared machine affects both alike; only the ratios within one run mean anything.

    .venv/bin/python -m bench.ingest [--concurrency 1,16,64] [--requests N] [--json]

The databases are dropped and the servers stopped at the end, also on Ctrl-C or an error.
"""

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
WEBHOOK_SECRET = "whsec_bench" + secrets.token_hex(16)
SECRET_KEY = "bench-secret-key-" + secrets.token_hex(16)
ADMIN_TOKEN = "bench-admin-token-" + secrets.token_hex(12)
AMOUNT, CURRENCY = 1999, "usd"
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- databases ------------------------------------------------------------------------------

def database_url(admin_url: str, name: str, driver: str = "postgresql") -> str:
    return make_url(admin_url).set(drivername=driver, database=name).render_as_string(
        hide_password=False)


SEED_SESSIONS = """
INSERT INTO checkout_sessions (id, merchant_id, mode, status, amount, currency, metadata,
                               created_at, updated_at, expires_at)
SELECT 'cs_bench_' || lpad(g::text, 9, '0'), 'mer_bench', 'test', 'created', $1, $2, '{}',
       now(), now(), now() + interval '10 years'
FROM generate_series(0, $3 - 1) AS g
"""


def session_id(index: int) -> str:
    return f"cs_bench_{index:09d}"


async def create_database(admin_url: str, name: str, sessions: int) -> None:
    from payhook.db.migrate import upgrade

    admin = await asyncpg.connect(database_url(admin_url, "postgres"))
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    await asyncio.to_thread(upgrade, database_url(admin_url, name, "postgresql+asyncpg"))
    conn = await asyncpg.connect(database_url(admin_url, name))
    try:
        await conn.execute("INSERT INTO merchants (id, name, created_at) "
                           "VALUES ('mer_bench', 'bench', now())")
        await conn.execute(SEED_SESSIONS, AMOUNT, CURRENCY, sessions)
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def drop_database(admin_url: str, name: str) -> None:
    admin = await asyncpg.connect(database_url(admin_url, "postgres"))
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


async def count_rows(admin_url: str, name: str) -> dict[str, int]:
    conn = await asyncpg.connect(database_url(admin_url, name))
    try:
        row = await conn.fetchrow("""
            SELECT (SELECT count(*) FROM checkout_sessions WHERE status = 'paid') AS paid,
                   (SELECT count(*) FROM webhook_events) AS events,
                   (SELECT count(*) FROM outbox_entries) AS outbox""")
        return dict(row)
    finally:
        await conn.close()


# --- servers --------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    name: str
    describe: str
    database: str
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    pool: int = 20  # the baseline's asyncpg pool size
    next_session: int = 0  # sessions [0, next_session) have been sent a payment
    sent: int = 0

    def command(self, admin_url: str) -> tuple[list[str], dict[str, str]]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYHOOK_", "BENCH_"))}
        env.pop("DATABASE_URL", None)
        url = database_url(admin_url, self.database)
        if self.name == "payhook":
            env.update(DATABASE_URL=url, PAYHOOK_SECRET_KEY=SECRET_KEY,
                       PAYHOOK_ADMIN_TOKEN=ADMIN_TOKEN,
                       PAYHOOK_STRIPE_WEBHOOK_SECRETS=WEBHOOK_SECRET)
            return [str(BIN / "payhook"), "serve", "--host", "127.0.0.1",
                    "--port", str(self.port)], env
        env.update(BENCH_DATABASE_URL=url, BENCH_POOL_MAX=str(self.pool))
        return [str(BIN / "uvicorn"), "bench.baseline_app:app", "--host", "127.0.0.1",
                "--port", str(self.port), "--loop", "uvloop", "--http", "httptools",
                "--no-access-log", "--no-server-header", "--no-proxy-headers",
                "--log-level", "warning"], env

    def start(self, admin_url: str, log_dir: Path) -> None:
        self.port = free_port()
        self.log_path = log_dir / f"{self.name}.log"
        argv, env = self.command(admin_url)
        with self.log_path.open("wb") as out:
            # Its own session: Ctrl-C reaches only us, and we stop the server ourselves.
            self.process = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                            stdout=out, stderr=out, start_new_session=True)

    def log_tail(self, lines: int = 20) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    async def wait_ready(self, timeout: float = 30.0) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n"
                                   f"{self.log_tail()}")
            try:  # uvicorn binds only after the lifespan start-up has finished
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        raise RuntimeError(f"{self.name} not listening after {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def cpu_seconds(self) -> float:
        return process_cpu(self.process.pid) if self.process else 0.0


def _stat_fields(pid: int | str) -> list[str]:
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rpartition(")")[2].split()


def process_cpu(pid: int, children: bool = False) -> float:
    """utime + stime (+ reaped children's) of a process, in seconds (0 if it is gone)."""
    try:
        fields = _stat_fields(pid)
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICK


def postgres_cpu() -> float:
    """CPU of every PostgreSQL process; the postmaster's reaped-children time keeps backends
    that exited during a phase in the sum."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as handle:
                if handle.read().strip() != "postgres":
                    continue
        except OSError:
            continue
        total += process_cpu(int(entry), children=True)
    return total


# --- requests -------------------------------------------------------------------------------

def build_requests(port: int, start: int, count: int, tag: str) -> list[bytes]:
    """Signed ``payment_intent.succeeded`` events for sessions ``start … start+count-1``."""
    stamp = int(time.time())
    key = WEBHOOK_SECRET.encode()
    requests = []
    for index in range(start, start + count):
        event = {
            "id": f"evt_{tag}_{index:09d}", "object": "event", "api_version": "2024-06-20",
            "created": stamp, "type": "payment_intent.succeeded", "livemode": False,
            "data": {"object": {
                "id": f"pi_{tag}_{index:09d}", "object": "payment_intent",
                "amount": AMOUNT, "amount_received": AMOUNT, "currency": CURRENCY,
                "status": "succeeded", "metadata": {"session_id": session_id(index)},
            }},
        }
        body = json.dumps(event, separators=(",", ":")).encode()
        signature = hmac.new(key, f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
        head = (f"POST /webhooks/stripe HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Content-Type: application/json\r\nStripe-Signature: t={stamp},v1={signature}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        requests.append(head.encode() + body)
    return requests


# --- load generator -------------------------------------------------------------------------

@dataclass
class Phase:
    requests: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)  # a few bodies of failed requests
    app_cpu: float = 0.0
    db_cpu: float = 0.0
    gen_cpu: float = 0.0

    def add(self, other: "Phase") -> None:
        self.requests += other.requests
        self.elapsed += other.elapsed
        self.latencies += other.latencies
        self.statuses.update(other.statuses)
        self.errors.update(other.errors)
        self.samples += other.samples[: max(0, 3 - len(self.samples))]
        self.app_cpu += other.app_cpu
        self.db_cpu += other.db_cpu
        self.gen_cpu += other.gen_cpu


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length, close = 0, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            close = value.strip().lower() == b"close"
        elif name == b"transfer-encoding":
            raise ValueError("chunked responses are not supported by this load generator")
    body = await reader.readexactly(length) if length else b""
    return status, body, close


async def run_phase(server: Server, requests: list[bytes], concurrency: int) -> Phase:
    phase = Phase(requests=len(requests))
    pending = iter(requests)
    connections = [await asyncio.open_connection("127.0.0.1", server.port)
                   for _ in range(min(concurrency, len(requests)))]

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        clock = time.perf_counter
        for request in pending:
            started = clock()
            try:
                writer.write(request)
                status, body, close = await read_response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError) as error:
                phase.errors[type(error).__name__] += 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                continue
            phase.latencies.append(clock() - started)
            phase.statuses[status] += 1
            if status != 200 or b'"applied"' not in body:
                phase.errors[f"HTTP {status}" if status != 200 else "not applied"] += 1
                if len(phase.samples) < 3:
                    phase.samples.append(body[:300].decode(errors="replace"))
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.close()

    app_cpu, db_cpu, gen_cpu = server.cpu_seconds(), postgres_cpu(), time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(client(reader, writer) for reader, writer in connections))
    phase.elapsed = time.perf_counter() - started
    phase.app_cpu = server.cpu_seconds() - app_cpu
    phase.db_cpu = postgres_cpu() - db_cpu
    phase.gen_cpu = time.process_time() - gen_cpu
    return phase


async def send(server: Server, count: int, concurrency: int, tag: str) -> Phase:
    requests = build_requests(server.port, server.next_session, count, tag)
    server.next_session += count
    server.sent += count
    return await run_phase(server, requests, concurrency)


# --- report ---------------------------------------------------------------------------------

def percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def summary(phase: Phase) -> dict[str, Any]:
    ordered = sorted(phase.latencies)
    per_request = 1000 / phase.requests if phase.requests else math.nan
    return {
        "requests": phase.requests,
        "seconds": round(phase.elapsed, 3),
        "rps": round(phase.requests / phase.elapsed, 1) if phase.elapsed else 0.0,
        "p50_ms": round(percentile(ordered, 0.50) * 1000, 2),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2) if ordered else math.nan,
        "app_cpu_ms_per_request": round(phase.app_cpu * per_request, 3),
        "db_cpu_ms_per_request": round(phase.db_cpu * per_request, 3),
        "loadgen_cpu_ms_per_request": round(phase.gen_cpu * per_request, 3),
        "statuses": {str(k): v for k, v in sorted(phase.statuses.items())},
        "errors": sum(phase.errors.values()),
        "error_kinds": dict(phase.errors),
        "error_samples": phase.samples,
    }


def finite(value: Any) -> Any:
    """The results with NaN (no successful request to measure) as JSON null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite(item) for item in value]
    return value


def render(meta: dict[str, Any], levels: list[dict[str, Any]], checks: dict[str, Any]) -> str:
    lines = [
        "bench-ingest: signed Stripe payment_intent.succeeded webhooks, each paying a distinct "
        "`created` session",
        f"  payhook : {meta['servers']['payhook']}",
        f"  baseline: {meta['servers']['baseline']}",
        f"  PostgreSQL {meta['postgresql']} at {meta['database']}, a fresh database per server; "
        f"{meta['cpus']} CPUs shared by servers, database and load generator",
        f"  load: this process, asyncio streams, keep-alive HTTP/1.1, {meta['requests']} "
        f"requests per server per concurrency in {meta['passes']} alternating passes "
        f"(+{meta['warmup']} warm-up each); latency = write request -> full response read",
        "  cpu ms/req: CPU time per request of the server process (app), of all PostgreSQL "
        "processes (db) and of the load generator (gen)",
        "",
    ]
    header = (f"  {'server':<9} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'app cpu':>8} {'db cpu':>7} {'gen cpu':>8} {'errors':>6}")
    for level in levels:
        lines.append(f"concurrency {level['concurrency']}")
        lines.append(header)
        for name in ("payhook", "baseline"):
            s = level["servers"][name]
            lines.append(
                f"  {name:<9} {s['requests']:>8} {s['rps']:>8.0f} {s['p50_ms']:>8.2f} "
                f"{s['p99_ms']:>8.2f} {s['app_cpu_ms_per_request']:>8.3f} "
                f"{s['db_cpu_ms_per_request']:>7.3f} {s['loadgen_cpu_ms_per_request']:>8.3f} "
                f"{s['errors']:>6}")
        failed = any(level["servers"][name]["errors"] for name in ("payhook", "baseline"))
        lines.append(f"  ratio payhook/baseline req/s: {level['ratio']:.2f}x "
                     f"(target >= 1.00x); p50 {level['p50_ratio']:.2f}x the baseline's"
                     + ("  -- NOT VALID: some requests failed" if failed else ""))
        for name in ("payhook", "baseline"):
            s = level["servers"][name]
            if s["errors"]:
                lines.append(f"  {name} errors: {s['error_kinds']} statuses {s['statuses']} "
                             f"e.g. {s['error_samples'][:1]}")
        lines.append("")
    lines.append("ratios payhook/baseline req/s: " + ", ".join(
        f"c={level['concurrency']} {level['ratio']:.2f}x" for level in levels))
    for name, check in checks.items():
        verdict = "ok" if check["ok"] else "MISMATCH"
        lines.append(f"database check {name}: sent {check['sent']}, paid sessions "
                     f"{check['paid']}, webhook_events {check['events']}, outbox_entries "
                     f"{check['outbox']} -> {verdict}")
    return "\n".join(lines)


# --- main -----------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench-ingest", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", default="1,16,64",
                        help="comma-separated concurrency levels (default 1,16,64)")
    parser.add_argument("--requests", type=int, default=3000,
                        help="measured requests per server per concurrency (default 3000)")
    parser.add_argument("--warmup", type=int, default=500,
                        help="warm-up requests per server before measuring (default 500)")
    parser.add_argument("--passes", type=int, default=4,
                        help="alternating passes per concurrency, A B B A … (default 4)")
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_ADMIN_URL",
                                                              DEFAULT_ADMIN_URL),
                        help="a PostgreSQL URL allowed to CREATE DATABASE "
                             f"(default $BENCH_ADMIN_URL or {DEFAULT_ADMIN_URL})")
    parser.add_argument("--baseline-pool", type=int, default=20,
                        help="the baseline's asyncpg pool size (default 20, as payhook's)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    try:
        args.levels = [int(part) for part in args.concurrency.split(",") if part.strip()]
    except ValueError:
        parser.error("--concurrency takes integers such as 1,16,64")
    if not args.levels or min(args.levels) < 1:
        parser.error("--concurrency needs at least one level >= 1")
    if min(args.requests, args.passes, args.baseline_pool) < 1 or args.warmup < 0:
        parser.error("--requests, --passes and --baseline-pool must be >= 1, --warmup >= 0")
    if args.requests < args.passes:
        parser.error("--requests must be at least --passes")
    return args


async def bench(args: argparse.Namespace) -> int:
    tag = f"{os.getpid()}"
    servers = [
        Server("payhook", "payhook serve: full ingest (signature, strict JSON, decision, "
               "payhook's writer), 1 uvicorn process, uvloop + httptools",
               f"bench_payhook_{tag}"),
        Server("baseline", "bench/baseline_app.py: bare Starlette + raw asyncpg pool "
               f"(max {args.baseline_pool}), json.loads + 5 statements in 1 transaction, "
               "no signature check", f"bench_baseline_{tag}", pool=args.baseline_pool),
    ]
    per_server = args.warmup + args.requests * len(args.levels)
    created: list[str] = []
    log_dir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        admin = await asyncpg.connect(database_url(args.admin_url, "postgres"))
        try:
            version = await admin.fetchval("SHOW server_version")
        finally:
            await admin.close()
        for server in servers:
            log(f"creating {server.database}: migrations + {per_server} sessions")
            created.append(server.database)
            await create_database(args.admin_url, server.database, per_server)
        for server in servers:
            server.start(args.admin_url, log_dir)
        for server in servers:
            await server.wait_ready()
            log(f"{server.name} listening on 127.0.0.1:{server.port}")
            if args.warmup:
                warm = await send(server, args.warmup, max(args.levels), tag)
                if warm.errors:
                    raise RuntimeError(f"{server.name} warm-up failed: {dict(warm.errors)} "
                                       f"{warm.samples[:1]}\n{server.log_tail()}")

        levels = []
        chunks = [args.requests // args.passes + (1 if i < args.requests % args.passes else 0)
                  for i in range(args.passes)]
        for number, concurrency in enumerate(args.levels):
            totals = {server.name: Phase() for server in servers}
            order = servers if number % 2 == 0 else servers[::-1]
            for index, chunk in enumerate(chunks):
                for server in order if index % 2 == 0 else order[::-1]:
                    log(f"c={concurrency} pass {index + 1}/{args.passes}: {server.name} "
                        f"{chunk} requests")
                    totals[server.name].add(await send(server, chunk, concurrency, tag))
            results = {name: summary(phase) for name, phase in totals.items()}
            base, ours = results["baseline"], results["payhook"]
            levels.append({
                "concurrency": concurrency, "servers": results,
                "ratio": round(ours["rps"] / base["rps"], 3) if base["rps"] else math.nan,
                "p50_ratio": (round(ours["p50_ms"] / base["p50_ms"], 3) if base["p50_ms"]
                              else math.nan),
            })

        for server in servers:
            server.stop()
        checks = {}
        for server in servers:
            counts = await count_rows(args.admin_url, server.database)
            checks[server.name] = {"sent": server.sent, **counts,
                                   "ok": counts["paid"] == server.sent == counts["events"]}
        meta = {
            "servers": {server.name: server.describe for server in servers},
            "postgresql": version, "database": make_url(args.admin_url).render_as_string(),
            "cpus": os.cpu_count(), "requests": args.requests, "warmup": args.warmup,
            "passes": args.passes, "concurrency": args.levels,
        }
        if args.json:
            print(json.dumps(finite({"meta": meta, "levels": levels, "checks": checks}),
                             indent=2))
        else:
            print(render(meta, levels, checks))
        failed = any(s["errors"] for level in levels for s in level["servers"].values())
        return 1 if failed or not all(check["ok"] for check in checks.values()) else 0
    finally:
        for server in servers:
            server.stop()
        for name in created:
            try:
                await drop_database(args.admin_url, name)
            except (OSError, asyncpg.PostgresError) as error:
                log(f"could not drop {name}: {error}")
        for path in log_dir.iterdir():
            path.unlink()
        log_dir.rmdir()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import uvloop
    except ImportError:
        run = asyncio.run
    else:
        run = uvloop.run

    async def guarded() -> int:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await bench(args)

    try:
        return run(guarded())
    except (KeyboardInterrupt, asyncio.CancelledError):
        log("interrupted: servers stopped, databases dropped")
        return 130


if __name__ == "__main__":
    sys.exit(main())
