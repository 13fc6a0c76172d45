"""``payhook``: serve, migrate, and operators' commands over the same services as the admin API."""

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from payhook.config import ConfigError, Settings, load_settings
from payhook.db.tables import EVENT_OUTCOMES
from payhook.errors import PayhookError
from payhook.providers import VERIFIERS

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from payhook.services.pagination import PageRequest

Command = Callable[[Settings, argparse.Namespace], Awaitable[int] | int]


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from payhook.app import create_app
    from payhook.observability import configure_logging

    configure_logging()
    uvicorn.run(
        create_app(settings), host=args.host, port=args.port, access_log=False, log_config=None,
        loop="uvloop", http="httptools", proxy_headers=False, server_header=False,
    )
    return 0


def _migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from payhook.db.migrate import upgrade

    upgrade(settings.database_url)
    print("database migrated to the latest schema", file=sys.stderr)
    return 0


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


@asynccontextmanager
async def _reading(settings: Settings) -> "AsyncIterator[AsyncConnection]":
    """One read-only transaction straight on the database."""
    from payhook.db.engine import create_engine, reading

    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with reading(engine) as conn:
            yield conn
    finally:
        await engine.dispose()


def _print_json(document: Any) -> None:
    print(json.dumps(document, indent=2))


def _page(args: argparse.Namespace) -> "PageRequest":
    from payhook.services.pagination import PageRequest

    query = {"limit": str(args.limit)} if args.limit is not None else {}
    return PageRequest.from_query({**query, "starting_after": args.starting_after or ""})


async def _events_list(settings: Settings, args: argparse.Namespace) -> int:
    from payhook.services import events

    async with _reading(settings) as conn:
        found = await events.list_events(conn, _page(args), provider=args.provider,
                                         outcome=args.outcome)
    _print_json(found.to_list(events.to_object))
    return 0


async def _events_show(settings: Settings, args: argparse.Namespace) -> int:
    from payhook.services import events

    async with _reading(settings) as conn:
        row = await events.get(conn, args.id)
    if args.raw:
        sys.stdout.buffer.write(bytes(row.raw_body))
        sys.stdout.flush()
    else:
        _print_json(events.to_object(row, with_body=True))
    return 0


async def _anomalies_list(settings: Settings, args: argparse.Namespace) -> int:
    from payhook.services import anomalies

    async with _reading(settings) as conn:
        found = await anomalies.list_anomalies(conn, _page(args), kind=args.kind,
                                               session_id=args.session)
    _print_json(found.to_list(anomalies.to_object))
    return 0


async def _trigger(settings: Settings, args: argparse.Namespace) -> int:
    import httpx

    from payhook import providers, trigger
    from payhook.providers.web3 import TX_HASH
    from payhook.services import sessions

    configured = providers.configured(settings)[args.provider].context.secrets
    if not configured:
        print(f"payhook: PAYHOOK_{args.provider.upper()}_WEBHOOK_SECRETS is not set: nothing to "
              "sign with", file=sys.stderr)
        return 2
    if args.tx is not None and (args.provider != "web3" or not TX_HASH.fullmatch(args.tx)):
        print("payhook: --tx is a web3 transaction hash, 0x and 64 hex digits", file=sys.stderr)
        return 2
    async with _reading(settings) as conn:
        row = await sessions.get_public(conn, args.session)
    session = trigger.Session(id=row.id, amount=int(row.amount), currency=row.currency,
                              mode=row.mode)
    signed = trigger.build(args.provider, session, configured[0], event_type=args.event,
                           tx_hash=args.tx)
    url = args.url or f"{settings.public_base_url}/webhooks/{args.provider}"
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            answer = await http.post(url, content=signed.raw, headers=signed.headers)
    except httpx.HTTPError as error:
        print(f"payhook: POST {url} failed: {error}", file=sys.stderr)
        return 1
    print(f"POST {url}: HTTP {answer.status_code} {answer.reason_phrase}", file=sys.stderr)
    try:
        _print_json(answer.json())
    except ValueError:
        print(answer.text)
    return 0 if answer.is_success else 1


def _list_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, help="at most this many (1-100, default 10)")
    parser.add_argument("--starting-after", metavar="ID", help="the page after this id")


def _operator_commands(commands: Any) -> None:
    events = commands.add_parser("events", help="stored provider events")
    event_commands = events.add_subparsers(dest="action", required=True)
    listing = event_commands.add_parser("list", help="events as JSON, newest first")
    listing.add_argument("--provider", choices=list(VERIFIERS))
    listing.add_argument("--outcome", choices=list(EVENT_OUTCOMES))
    _list_options(listing)
    listing.set_defaults(run=_events_list)
    show = event_commands.add_parser("show", help="one event as JSON, raw body included")
    show.add_argument("id")
    show.add_argument("--raw", action="store_true", help="print only the raw body's bytes")
    show.set_defaults(run=_events_show)

    anomalies = commands.add_parser("anomalies", help="what operators should look at")
    anomaly_commands = anomalies.add_subparsers(dest="action", required=True)
    listing = anomaly_commands.add_parser("list", help="anomalies as JSON, newest first")
    listing.add_argument("--kind", help="e.g. amount_mismatch")
    listing.add_argument("--session", metavar="ID", help="a checkout session id")
    _list_options(listing)
    listing.set_defaults(run=_anomalies_list)

    trigger = commands.add_parser(
        "trigger", help="send a signed provider event for a session (like `stripe trigger`)")
    trigger.add_argument("provider", choices=list(VERIFIERS))
    trigger.add_argument("--session", required=True, metavar="ID")
    trigger.add_argument("--event", metavar="TYPE",
                         help="event type (default: the provider's successful payment)")
    trigger.add_argument("--url", help="default: $PAYHOOK_PUBLIC_BASE_URL/webhooks/<provider>")
    trigger.add_argument("--tx", metavar="0xHASH",
                         help="web3 transaction hash (default: a random one)")
    trigger.set_defaults(run=_trigger)


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
    _operator_commands(commands)
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
