"""``payhook``: serve, migrate, run the worker, and operators' commands over the same services
as the admin API (straight on the database named by DATABASE_URL)."""

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from payhook.cli import deliveries, events, keys, outbox, trigger, web3
from payhook.config import ConfigError, Settings, load_settings
from payhook.errors import PayhookError

Command = Callable[[Settings, argparse.Namespace], Awaitable[int] | int]


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from payhook.api.connections import Bounds, bounded_protocol
    from payhook.app import create_app
    from payhook.observability import configure_logging

    configure_logging()
    protocol = bounded_protocol(Bounds(header_seconds=settings.http_header_timeout_seconds,
                                       body_seconds=settings.http_body_timeout_seconds,
                                       max_connections=settings.http_max_connections))
    uvicorn.run(
        create_app(settings), host=args.host, port=args.port, access_log=False, log_config=None,
        loop="uvloop", http=protocol, ws="none", proxy_headers=False, server_header=False,
    )
    return 0


def _migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from payhook.db.migrate import upgrade

    upgrade(settings.database_url)
    print("database migrated to the latest schema", file=sys.stderr)
    return 0


def _worker(settings: Settings, _args: argparse.Namespace) -> int:
    from payhook.worker.supervisor import run

    return run(settings)


async def _merchants_create(settings: Settings, args: argparse.Namespace) -> int:
    from payhook.db.engine import create_engine
    from payhook.services import merchants
    from payhook.services.api_keys import KeyHasher

    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            created = await merchants.create(conn, KeyHasher(settings.require_secret()), args.name)
    finally:
        await engine.dispose()
    if args.json:
        print(json.dumps(merchants.to_object(created), indent=2))
    else:
        print(f"merchant {created.row.id}")
        print(f"test key {created.key.secret}")
        print("(the key is shown once: keep it somewhere safe)", file=sys.stderr)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="payhook", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(run=_serve)

    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(run=_migrate)

    merchants = commands.add_parser("merchants", help="manage merchants")
    merchant_commands = merchants.add_subparsers(dest="action", required=True)
    create = merchant_commands.add_parser("create", help="create a merchant and a test key")
    create.add_argument("name")
    create.add_argument("--json", action="store_true", help="print the merchant as JSON")
    create.set_defaults(run=_merchants_create)
    worker = commands.add_parser("worker", help="run the outbox worker (needs REDIS_URL)")
    worker.set_defaults(run=_worker)

    for module in (deliveries, events, keys, outbox, trigger, web3):
        module.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as error:
        print(f"payhook: configuration error: {error}", file=sys.stderr)
        return 2
    try:
        result: Any = args.run(settings, args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
    except PayhookError as error:  # a bad filter, an unknown id: one line, like the API's
        print(f"payhook: {error.message}", file=sys.stderr)
        return 1
    return int(result)


if __name__ == "__main__":
    sys.exit(main())
