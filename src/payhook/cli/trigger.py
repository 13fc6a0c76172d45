"""``payhook trigger``: a correctly signed provider event for a session, like `stripe trigger`."""

import argparse
import sys
from typing import Any

from payhook import providers
from payhook.cli.common import print_json, reading
from payhook.config import Settings


async def _trigger(settings: Settings, args: argparse.Namespace) -> int:
    import httpx

    from payhook import trigger
    from payhook.services import sessions

    spec = providers.get(args.provider)
    configured = providers.configured(settings)[args.provider].context.secrets
    if not configured:
        print(f"payhook: PAYHOOK_{spec.secrets_setting.upper()} is not set: nothing to sign with",
              file=sys.stderr)
        return 2
    if args.tx is not None and (spec.tx_hash is None or not spec.tx_hash.fullmatch(args.tx)):
        print("payhook: --tx is a web3 transaction hash, 0x and 64 hex digits", file=sys.stderr)
        return 2
    async with reading(settings) as conn:
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
        print_json(answer.json())
    except ValueError:
        print(answer.text)
    return 0 if answer.is_success else 1


def add_commands(commands: Any) -> None:
    trigger = commands.add_parser(
        "trigger", help="send a signed provider event for a session (like `stripe trigger`)")
    trigger.add_argument("provider", choices=providers.names())
    trigger.add_argument("--session", required=True, metavar="ID")
    trigger.add_argument("--event", metavar="TYPE",
                         help="event type (default: the provider's successful payment)")
    trigger.add_argument("--url", help="default: $PAYHOOK_PUBLIC_BASE_URL/webhooks/<provider>")
    trigger.add_argument("--tx", metavar="0xHASH",
                         help="web3 transaction hash (default: a random one)")
    trigger.set_defaults(run=_trigger)
