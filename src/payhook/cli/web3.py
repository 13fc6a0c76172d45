"""``payhook web3 status``: the node and the chain watch, as ``/readyz`` reports them."""

import argparse
import sys
from typing import Any

from payhook.cli.common import print_json
from payhook.config import Settings

LABELS = (("status", "node"), ("chain_id", "chain id"), ("served_chain_id", "node's chain id"),
          ("head", "head"), ("confirmations", "confirmations"),
          ("watched_addresses", "open addresses watched"), ("behind", "blocks behind"),
          ("error", "error"))


async def _status(settings: Settings, args: argparse.Namespace) -> int:
    if settings.web3_rpc_url is None:
        print("payhook: PAYHOOK_WEB3_RPC_URL is not set: nothing is watched", file=sys.stderr)
        return 2
    from payhook.db.engine import create_engine
    from payhook.effects.chain import Chain
    from payhook.effects.watch_status import OK, report

    engine = create_engine(settings.database_url, pool_size=1)
    chain = Chain.connect(settings.web3_rpc_url)
    try:
        document = await report(engine, chain, settings)
    finally:
        await chain.close()
        await engine.dispose()
    if args.json:
        print_json(document)
    else:
        print("\n".join(_lines(document)))
    return 0 if document["status"] == OK else 1


def _lines(document: dict[str, Any]) -> list[str]:
    lines = [f"{label}: {document[key]}" for key, label in LABELS if key in document]
    cursor = document["cursor"]
    lines.append("cursor: none yet (the watcher has not started)" if cursor is None else
                 f"cursor: block {cursor['block_number']} {cursor['block_hash']} "
                 f"(at {cursor['updated_at']})")
    return lines


def add_commands(commands: Any) -> None:
    web3 = commands.add_parser("web3", help="the Ethereum node and the chain watch")
    actions = web3.add_subparsers(dest="action", required=True)
    status = actions.add_parser("status", help="chain id, head, cursor, confirmations, open "
                                               "addresses watched (exit 1 if the node is not ok)")
    status.add_argument("--json", action="store_true", help="print the report as JSON")
    status.set_defaults(run=_status)
