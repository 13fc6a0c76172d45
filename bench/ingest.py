"""``make bench-ingest``: payhook's Stripe webhook ingest against a bare Starlette + raw asyncpg
app doing the same five statements, in the same run, on the same PostgreSQL (issue 3).

Each server gets a fresh database (migrated with payhook's migrations, one merchant and one
``created`` session per request the run will send) and runs as its own uvicorn process
(uvloop + httptools, one process, no access log). This process is the load generator: raw
asyncio streams over keep-alive HTTP/1.1 connections, pre-built signed requests, one distinct
session per request. For each concurrency the two servers take turns (A B B A …) so drift on
this shared machine affects both alike; only the ratios within one run mean anything.

    .venv/bin/python -m bench.ingest [--concurrency 1,16,64] [--requests N] [--json]
                                     [--preload N]

With ``--preload N`` a third server takes its turns beside the two: payhook again, on a
database already holding N paid sessions, their N stored events and 6 N done outbox rows
(written by SQL in bulk), so one run compares ingest on full tables with ingest on empty ones
(P3), and prints the plans of the writer's and the claim's statements on the full tables.

The databases are dropped and the servers stopped at the end, also on Ctrl-C or an error.
"""

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from bench.common import (
    Phase,
    Server,
    add_admin_url,
    create_database,
    database_url,
    drop_database,
    finite,
    log,
    percentile,
    preload,
    run_bench,
    send,
    server_version,
)
from bench.plans import plans

# The figures of issue 14, read at the highest concurrency of the run.
TARGETS = {"P1": ("payhook req/s / baseline req/s", ">=", 1.0),
           "P2": ("payhook p99 / baseline p99", "<=", 1.5),
           "P3": ("payhook req/s on full tables / on empty tables", ">=", 0.9)}


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


def render(meta: dict[str, Any], levels: list[dict[str, Any]], checks: dict[str, Any]) -> str:
    lines = [
        "bench-ingest: signed Stripe payment_intent.succeeded webhooks, each paying a distinct "
        "`created` session",
        *(f"  {name}: {describe}" for name, describe in meta["servers"].items()),
        f"  PostgreSQL {meta['postgresql']} at {meta['database']}, a fresh database per server; "
        f"{meta['cpus']} CPUs shared by servers, database and load generator",
        f"  load: this process, asyncio streams, keep-alive HTTP/1.1, {meta['requests']} "
        f"requests per server per concurrency in {meta['passes']} alternating passes "
        f"(+{meta['warmup']} warm-up each); latency = write request -> full response read",
        "  cpu ms/req: CPU time per request of the server process (app), of all PostgreSQL "
        "processes (db) and of the load generator (gen)",
        "",
    ]
    header = (f"  {'server':<15} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'app cpu':>8} {'db cpu':>7} {'gen cpu':>8} {'errors':>6}")
    for level in levels:
        lines.append(f"concurrency {level['concurrency']}")
        lines.append(header)
        for name, s in level["servers"].items():
            lines.append(
                f"  {name:<15} {s['requests']:>8} {s['rps']:>8.0f} {s['p50_ms']:>8.2f} "
                f"{s['p99_ms']:>8.2f} {s['app_cpu_ms_per_request']:>8.3f} "
                f"{s['db_cpu_ms_per_request']:>7.3f} {s['loadgen_cpu_ms_per_request']:>8.3f} "
                f"{s['errors']:>6}")
        failed = any(s["errors"] for s in level["servers"].values())
        lines.append(f"  ratio payhook/baseline req/s: {level['ratio']:.2f}x "
                     f"(target >= 1.00x); p50 {level['p50_ratio']:.2f}x the baseline's"
                     + ("  -- NOT VALID: some requests failed" if failed else ""))
        for name, s in level["servers"].items():
            if s["errors"]:
                lines.append(f"  {name} errors: {s['error_kinds']} statuses {s['statuses']} "
                             f"e.g. {s['error_samples'][:1]}")
        lines.append("")
    lines.append("ratios payhook/baseline req/s: " + ", ".join(
        f"c={level['concurrency']} {level['ratio']:.2f}x" for level in levels))
    for name, (meaning, sense, target) in TARGETS.items():
        if name in meta["figures"]:
            value = meta["figures"][name]
            met = value >= target if sense == ">=" else value <= target
            lines.append(f"{name} at c={levels[-1]['concurrency']}: {meaning} = {value:.2f} "
                         f"(target {sense} {target}) -> {'met' if met else 'MISSED'}")
    for name, check in checks.items():
        verdict = "ok" if check["ok"] else "MISMATCH"
        lines.append(f"database check {name}: sent {check['sent']} (+{check['preloaded']} "
                     f"preloaded), paid sessions "
                     f"{check['paid']}, webhook_events {check['events']}, outbox_entries "
                     f"{check['outbox']} -> {verdict}")
    return "\n".join(lines)


# --- main -----------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench-ingest", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", default="1,16,64",
                        help="comma-separated concurrency levels (default 1,16,64)")
    parser.add_argument("--requests", type=int, default=6000,
                        help="measured requests per server per concurrency (default 6000)")
    parser.add_argument("--warmup", type=int, default=500,
                        help="warm-up requests per server before measuring (default 500)")
    # Short passes: a disturbance of a second or two (autovacuum on a young table, a
    # checkpoint) then falls on every server's turns alike, not on one server's pass.
    parser.add_argument("--passes", type=int, default=12,
                        help="alternating passes per concurrency, A B B A … (default 12)")
    add_admin_url(parser)
    parser.add_argument("--baseline-pool", type=int, default=20,
                        help="the baseline's asyncpg pool size (default 20, as payhook's)")
    parser.add_argument("--preload", type=int, default=0, metavar="N",
                        help="add a payhook server on tables already holding N paid sessions, "
                             "events and done outbox rows (P3), and print the plans")
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
    if args.preload < 0:
        parser.error("--preload must be >= 0")
    if args.requests < args.passes:
        parser.error("--requests must be at least --passes")
    return args


async def bench(args: argparse.Namespace) -> int:
    tag = f"{os.getpid()}"
    servers = [
        Server("payhook", "payhook serve: full ingest (signature, strict JSON, decision, "
               "payhook's writer), 1 uvicorn process, uvloop + httptools; REDIS_URL set as in "
               "production, so it only nudges (no worker runs, as the baseline drains nothing)",
               f"bench_payhook_{tag}"),
        Server("baseline", "bench/baseline_app.py: bare Starlette + raw asyncpg pool "
               f"(max {args.baseline_pool}), json.loads + 5 statements in 1 transaction, "
               "no signature check", f"bench_baseline_{tag}", pool=args.baseline_pool),
    ]
    full = f"payhook+{args.preload}"
    if args.preload:
        servers.insert(1, Server(full, f"payhook serve as above, on tables already holding "
                                 f"{args.preload} paid sessions, {args.preload} stored events "
                                 f"and {6 * args.preload} done outbox rows",
                                 f"bench_full_{tag}"))
    per_server = args.warmup + args.requests * len(args.levels)
    created: list[str] = []
    log_dir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    from tests.e2e.processes import RedisServer

    redis_server = RedisServer(log_dir).start()
    for server in servers[:-1]:  # both payhook servers (the baseline is last)
        server.env["REDIS_URL"] = redis_server.url
    try:
        version = await server_version(args.admin_url)
        for server in servers:
            log(f"creating {server.database}: migrations + {per_server} sessions")
            created.append(server.database)
            await create_database(args.admin_url, server.database, per_server + 1)
            if server.name == full:
                log(f"preloading {server.database} with {args.preload} paid sessions")
                seconds = await preload(args.admin_url, server.database, args.preload)
                log(f"preloaded in {seconds:.0f} s")
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
        top, explained = levels[-1]["servers"], ""
        figures = {"P1": top["payhook"]["rps"] / top["baseline"]["rps"],
                   "P2": top["payhook"]["p99_ms"] / top["baseline"]["p99_ms"]}
        if args.preload:
            figures["P3"] = top[full]["rps"] / top["payhook"]["rps"]
            explained = await plans(args.admin_url, f"bench_full_{tag}", per_server)
        checks = {}
        for server in servers:
            counts = await count_rows(args.admin_url, server.database)
            preloaded = args.preload if server.name == full else 0
            checks[server.name] = {"sent": server.sent, "preloaded": preloaded, **counts,
                                   "ok": counts["paid"] - preloaded == server.sent
                                   == counts["events"] - preloaded}
        meta = {
            "servers": {server.name: server.describe for server in servers},
            "postgresql": version, "database": make_url(args.admin_url).render_as_string(),
            "cpus": os.cpu_count(), "requests": args.requests, "warmup": args.warmup,
            "passes": args.passes, "concurrency": args.levels, "preload": args.preload,
            "figures": {name: round(value, 3) for name, value in figures.items()},
            "plans": explained,
        }
        if args.json:
            print(json.dumps(finite({"meta": meta, "levels": levels, "checks": checks}),
                             indent=2))
        else:
            print(render(meta, levels, checks))
            print(explained)
        failed = any(s["errors"] for level in levels for s in level["servers"].values())
        return 1 if failed or not all(check["ok"] for check in checks.values()) else 0
    finally:
        for server in servers:
            server.stop()
        redis_server.stop()
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
    return run_bench(lambda: bench(args))


if __name__ == "__main__":
    sys.exit(main())
