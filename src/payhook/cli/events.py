"""Operators' read commands: provider events and anomalies, as the admin API shows them."""

import argparse
import sys
from typing import Any

from payhook import providers
from payhook.cli.common import list_options, print_json, print_page, reading
from payhook.config import Settings
from payhook.db.tables import EVENT_OUTCOMES


async def _events_list(settings: Settings, args: argparse.Namespace) -> int:
    from payhook.services import events

    return await print_page(settings, args, events.list_events, events.to_object,
                            provider=args.provider, outcome=args.outcome)


async def _events_show(settings: Settings, args: argparse.Namespace) -> int:
    from payhook.services import events

    async with reading(settings) as conn:
        row = await events.get(conn, args.id)
    if args.raw:
        sys.stdout.buffer.write(bytes(row.raw_body))
        sys.stdout.flush()
    else:
        print_json(events.to_object(row, with_body=True))
    return 0


async def _anomalies_list(settings: Settings, args: argparse.Namespace) -> int:
    from payhook.services import anomalies

    return await print_page(settings, args, anomalies.list_anomalies, anomalies.to_object,
                            kind=args.kind, session_id=args.session)


def add_commands(commands: Any) -> None:
    events = commands.add_parser("events", help="stored provider events")
    event_commands = events.add_subparsers(dest="action", required=True)
    listing = event_commands.add_parser("list", help="events as JSON, newest first")
    listing.add_argument("--provider", choices=providers.names())
    listing.add_argument("--outcome", choices=list(EVENT_OUTCOMES))
    list_options(listing)
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
    list_options(listing)
    listing.set_defaults(run=_anomalies_list)
