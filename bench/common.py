"""Pieces every benchmark here uses: fresh PostgreSQL databases (payhook's migrations, seeded
sessions), server processes started and stopped by the bench, CPU accounting from ``/proc``,
pre-built signed Stripe webhooks, the raw-asyncio keep-alive load generator, percentiles, and
the entry point that runs a bench on uvloop and cleans up on Ctrl-C or SIGTERM.
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
import time
from collections import Counter
from collections.abc import Awaitable, Callable
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
                               customer_email, created_at, updated_at, expires_at)
SELECT 'cs_bench' || lpad(g::text, 20, '0'), $4, 'test', 'created', $1, $2, '{}',
       CASE WHEN $5 THEN 'customer' || g || '@shop.example' END,
       now(), now(), now() + interval '10 years'
FROM generate_series(0, $3 - 1) AS g
"""


def session_id(index: int) -> str:
    """A seeded session's id, of the real ids' form (``cs_`` + 25 base-62 characters), which the
    API checks before any lookup."""
    return f"cs_bench{index:020d}"


async def create_database(admin_url: str, name: str, sessions: int = 0) -> None:
    """A fresh database with payhook's migrations; with ``sessions``, also the merchant
    ``mer_bench`` and that many ``created`` sessions of it (see :func:`seed_sessions`)."""
    from payhook.db.migrate import upgrade

    admin = await asyncpg.connect(database_url(admin_url, "postgres"))
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    await asyncio.to_thread(upgrade, database_url(admin_url, name, "postgresql+asyncpg"))
    if sessions:
        conn = await asyncpg.connect(database_url(admin_url, name))
        try:
            await conn.execute("INSERT INTO merchants (id, name, created_at) "
                               "VALUES ('mer_bench', 'bench', now())")
        finally:
            await conn.close()
        await seed_sessions(admin_url, name, "mer_bench", sessions)


async def seed_sessions(admin_url: str, name: str, merchant_id: str, sessions: int,
                        emails: bool = False) -> None:
    """``created`` test-mode sessions ``session_id(0 … sessions-1)`` of an existing merchant,
    each with a customer e-mail address when ``emails``; then VACUUM ANALYZE."""
    conn = await asyncpg.connect(database_url(admin_url, name))
    try:
        await conn.execute(SEED_SESSIONS, AMOUNT, CURRENCY, sessions, merchant_id, emails)
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


# What a database holds after ``count`` paid sessions (bench-ingest --preload): the sessions,
# their stored Stripe events (~700-byte bodies) and their six done outbox rows — written by SQL
# in bulk, in seconds, not through the API. Ids have the real form and never meet the bench's.
PRELOAD = (
    """INSERT INTO checkout_sessions (id, merchant_id, mode, status, amount, currency, metadata,
           customer_email, payment_provider, provider_reference, created_at, updated_at,
           expires_at, paid_at)
       SELECT 'cs_preload' || lpad(g::text, 18, '0'), $2, 'test', 'paid', 1999, 'usd', '{}',
              'c' || g || '@shop.example', 'stripe', 'pi_' || g,
              t, t, t + interval '1 day', t
       FROM generate_series(1, $1) AS g,
            LATERAL (SELECT now() - interval '20 days' * (1 - g::float / $1)) AS at(t)""",
    """INSERT INTO webhook_events (id, provider, event_id, type, session_id, outcome, raw_body,
           headers, created_at)
       SELECT 'ev_preload' || lpad(g::text, 18, '0'), 'stripe', 'evt_preload' || g,
              'payment_intent.succeeded', 'cs_preload' || lpad(g::text, 18, '0'), 'applied',
              convert_to('{"id":"evt_preload' || g || '","type":"payment_intent.succeeded",'
                         || '"data":{"object":{' || repeat('"k' || g || '":"' || md5(g::text)
                         || '",', 14) || '"metadata":{"session_id":"cs_preload'
                         || lpad(g::text, 18, '0') || '"}}}}', 'UTF8'),
              '{"stripe-signature":"t=1,v1=0"}'::jsonb, t
       FROM generate_series(1, $1) AS g,
            LATERAL (SELECT now() - interval '20 days' * (1 - g::float / $1)) AS at(t)""",
    """INSERT INTO outbox_entries (id, kind, payload, status, attempts, max_attempts,
           next_attempt_at, errors, created_at, updated_at)
       SELECT 'ob_preload' || lpad((g * 6 + k)::text, 18, '0'), kind,
              jsonb_build_object('session_id', 'cs_preload' || lpad(g::text, 18, '0'),
                                 'event', 'ev_preload' || lpad(g::text, 18, '0')),
              'done', 1, 10, t, '[]', t, t
       FROM generate_series(1, $1) AS g,
            LATERAL (SELECT now() - interval '20 days' * (1 - g::float / $1)) AS at(t),
            unnest(ARRAY['invoice.create', 'api_key.provision', 'access_link.issue',
                         'email.send', 'merchant.notify', 'delivery.send'])
                WITH ORDINALITY AS kinds(kind, k)""",
)


async def preload(admin_url: str, name: str, count: int) -> float:
    """Fill ``name`` with ``count`` paid sessions of ``mer_bench``, their events and done
    outbox rows (see :data:`PRELOAD`), then VACUUM ANALYZE; returns the seconds it took."""
    started = time.monotonic()
    conn = await asyncpg.connect(database_url(admin_url, name))
    try:
        for statement in PRELOAD:
            await conn.execute(statement, *((count, "mer_bench") if "$2" in statement
                                            else (count,)))
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return time.monotonic() - started


async def drop_database(admin_url: str, name: str) -> None:
    admin = await asyncpg.connect(database_url(admin_url, "postgres"))
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


async def server_version(admin_url: str) -> str:
    admin = await asyncpg.connect(database_url(admin_url, "postgres"))
    try:
        return str(await admin.fetchval("SHOW server_version"))
    finally:
        await admin.close()


# --- servers --------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env() -> dict[str, str]:
    """This environment without any payhook or bench setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYHOOK_", "BENCH_"))}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    return env


def payhook_env(admin_url: str, database: str) -> dict[str, str]:
    """What ``payhook serve`` and the worker need to run on ``database``."""
    return {**clean_env(), "DATABASE_URL": database_url(admin_url, database),
            "PAYHOOK_SECRET_KEY": SECRET_KEY, "PAYHOOK_ADMIN_TOKEN": ADMIN_TOKEN,
            "PAYHOOK_STRIPE_WEBHOOK_SECRETS": WEBHOOK_SECRET}


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
    env: dict[str, str] = field(default_factory=dict)  # added to payhook's environment
    _started_with: tuple[str, Path] = ("", Path())

    def command(self, admin_url: str) -> tuple[list[str], dict[str, str]]:
        if self.name.startswith("payhook"):
            env = {**payhook_env(admin_url, self.database), **self.env}
            return [str(BIN / "payhook"), "serve", "--host", "127.0.0.1",
                    "--port", str(self.port)], env
        env = {**clean_env(), "BENCH_DATABASE_URL": database_url(admin_url, self.database),
               "BENCH_POOL_MAX": str(self.pool)}
        return [str(BIN / "uvicorn"), "bench.baseline_app:app", "--host", "127.0.0.1",
                "--port", str(self.port), "--loop", "uvloop", "--http", "httptools",
                "--no-access-log", "--no-server-header", "--no-proxy-headers",
                "--log-level", "warning"], env

    def start(self, admin_url: str, log_dir: Path) -> None:
        self.port = free_port()
        self.log_path = log_dir / f"{self.name}.log"
        self._started_with = (admin_url, log_dir)
        argv, env = self.command(admin_url)
        with self.log_path.open("ab") as out:
            # Its own session: Ctrl-C reaches only us, and we stop the server ourselves.
            self.process = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                            stdout=out, stderr=out, start_new_session=True)

    def log_tail(self, lines: int = 20) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n"
                               f"{self.log_tail()}")

    async def wait_ready(self, timeout: float = 30.0, binds: int = 3) -> None:
        """Until the server accepts connections. A free port can be taken before the server
        binds it (by any process's outgoing connection: it is in the ephemeral range): then
        the server starts again on another, up to ``binds`` times."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (binds > 1 and self.process.poll() is not None
                    and "address already in use" in self.log_tail()):
                log(f"{self.name}: port {self.port} was taken before it bound; another port")
                binds -= 1
                self.start(*self._started_with)
                continue
            self.check_alive()
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

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 10 s; the exit code (None if it was not running)."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is not None:
            return process.returncode
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()

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

    def record(self, status: int, body: bytes) -> None:
        """One answer: payhook's ingest answers 200 with ``"outcome": "applied"``."""
        self.statuses[status] += 1
        if status != 200 or b'"applied"' not in body:
            self.errors[f"HTTP {status}" if status != 200 else "not applied"] += 1
            if len(self.samples) < 3:
                self.samples.append(body[:300].decode(errors="replace"))


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
            phase.record(status, body)
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


def finite(value: Any) -> Any:
    """The results with NaN (no successful request to measure) as JSON null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite(item) for item in value]
    return value


# --- entry point ----------------------------------------------------------------------------

def run_bench(bench: Callable[[], Awaitable[int]]) -> int:
    """Run ``bench()`` on uvloop; SIGTERM cancels it like Ctrl-C, so its ``finally`` cleans up
    either way; 130 when interrupted."""
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
        return await bench()

    try:
        return run(guarded())
    except (KeyboardInterrupt, asyncio.CancelledError):
        log("interrupted: processes stopped, databases dropped")
        return 130


def add_admin_url(parser: argparse.ArgumentParser) -> None:
    """``--admin-url``: where the bench may create and drop its databases."""
    parser.add_argument("--admin-url", default=os.environ.get("BENCH_ADMIN_URL",
                                                              DEFAULT_ADMIN_URL),
                        help="a PostgreSQL URL allowed to CREATE DATABASE "
                             f"(default $BENCH_ADMIN_URL or {DEFAULT_ADMIN_URL})")
