"""``payhook deliveries list --merchant ID``: one merchant's deliveries with every attempt, for
operators helping a merchant whose endpoint missed events (the merchant's own view is
``GET /v1/deliveries``)."""

import argparse
import sys
from typing import Any

from payhook.cli.common import list_options, page, print_json, reading
from payhook.config import Settings
from payhook.domain.webhooks import DELIVERY_STATUSES
from payhook.ids import has_prefix


async def _list(settings: Settings, args: argparse.Namespace) -> int:
    from payhook.services import deliveries

    if not has_prefix(args.merchant, "mer"):
        print("payhook: --merchant must be a merchant id (mer_…)", file=sys.stderr)
        return 2
    async with reading(settings) as conn:
        found = await deliveries.list_for_merchant(conn, args.merchant, args.mode, page(args),
                                                   status=args.status)
        more = await deliveries.details(conn, found.rows)
    print_json(found.to_list(lambda row: deliveries.to_object(row, more[row.id])))
    return 0


def add_commands(commands: Any) -> None:
    parser = commands.add_parser("deliveries", help="merchants' webhook deliveries")
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="one merchant's deliveries as JSON, newest first")
    listing.add_argument("--merchant", required=True, metavar="ID", help="mer_…")
    listing.add_argument("--mode", choices=["test", "live"], help="one mode only (default both)")
    listing.add_argument("--status", choices=list(DELIVERY_STATUSES))
    list_options(listing)
    listing.set_defaults(run=_list)
