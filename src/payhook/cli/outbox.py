"""``payhook outbox list|show|replay``: the operators' view of the outbox, as /admin/outbox."""

import argparse
import getpass
import socket
import sys
from typing import Any

from payhook.cli.common import list_options, print_json, print_page, reading, writing
from payhook.config import Settings
from payhook.outbox import operators


def actor() -> str:
    """Who is replaying, for the audit trail."""
    return f"cli:{getpass.getuser()}@{socket.gethostname()}"


async def _list(settings: Settings, args: argparse.Namespace) -> int:
    return await print_page(settings, args, operators.list_entries, operators.to_object,
                            status=args.status, kind=args.kind)


async def _show(settings: Settings, args: argparse.Namespace) -> int:
    async with reading(settings) as conn:
        row = await operators.get_entry(conn, args.id)
    print_json(operators.to_object(row))
    return 0


async def _replay(settings: Settings, args: argparse.Namespace) -> int:
    if (args.id is None) == (not args.all_dead):
        print("payhook: name one entry id, or --all-dead (optionally with --kind)",
              file=sys.stderr)
        return 2
    async with writing(settings) as conn:
        if args.id is not None:
            if args.dry_run:
                row = await operators.get_entry(conn, args.id)
                print_json({"would_replay": [row.id] if row.status == "dead" else [],
                            "status": row.status})
                return 0
            row = await operators.replay_one(conn, args.id, actor(), args.reason)
            print_json(operators.to_object(row))
            return 0
        ids = await operators.replay_dead(conn, actor(), kind=args.kind, reason=args.reason,
                                          dry_run=args.dry_run)
    print_json({"would_replay" if args.dry_run else "replayed": ids, "count": len(ids)})
    return 0


def add_commands(commands: Any) -> None:
    outbox = commands.add_parser("outbox", help="work the worker owes, failed work to replay")
    actions = outbox.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="outbox entries as JSON, newest first")
    listing.add_argument("--status", choices=list(operators.STATUSES))
    listing.add_argument("--kind", help="e.g. delivery.send")
    list_options(listing)
    listing.set_defaults(run=_list)
    show = actions.add_parser("show", help="one entry with its errors")
    show.add_argument("id")
    show.set_defaults(run=_show)
    replay = actions.add_parser("replay", help="dead entries back to pending (audited)")
    replay.add_argument("id", nargs="?", help="one dead entry")
    replay.add_argument("--all-dead", action="store_true", help="every dead entry")
    replay.add_argument("--kind", help="with --all-dead: only this kind")
    replay.add_argument("--reason", help="why, for the audit trail")
    replay.add_argument("--dry-run", action="store_true", help="say what would be replayed")
    replay.set_defaults(run=_replay)
