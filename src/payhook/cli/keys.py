"""``payhook keys create``: a new API key for a merchant, as ``POST /admin/merchants/{id}/api_keys``
— how an operator helps a merchant who lost its key."""

import argparse
import sys
from typing import Any

from payhook.cli.common import print_json, writing
from payhook.config import Settings


async def _create(settings: Settings, args: argparse.Namespace) -> int:
    from payhook.schemas import AdminApiKeyCreate, parse
    from payhook.services import api_keys, merchants
    from payhook.services.api_keys import KeyHasher

    # The API's own validation, so the shell cannot store a label the API would refuse.
    body = parse(AdminApiKeyCreate, {"mode": args.mode, "label": args.label})
    async with writing(settings) as conn:
        issued = await merchants.issue_key(conn, KeyHasher(settings.require_secret()),
                                           args.merchant, body.mode, body.label)
    if args.json:
        print_json(api_keys.to_object(issued.row, secret=issued.secret))
    else:
        print(f"key {issued.row.id}")
        print(f"{body.mode} key {issued.secret}")
        print("(the key is shown once: keep it somewhere safe)", file=sys.stderr)
    return 0


def add_commands(commands: Any) -> None:
    keys = commands.add_parser("keys", help="merchants' API keys")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="a new key for a merchant (shown once)")
    create.add_argument("--merchant", required=True, metavar="ID", help="the merchant (mer_…)")
    create.add_argument("--mode", required=True, choices=["test", "live"])
    create.add_argument("--label", help="what the key is for")
    create.add_argument("--json", action="store_true", help="print the key as JSON")
    create.set_defaults(run=_create)
