"""What every command shares: reading the database, printing JSON, list options."""

import argparse
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from payhook.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from payhook.db.pagination import Page, PageRequest


@asynccontextmanager
async def reading(settings: Settings) -> "AsyncIterator[AsyncConnection]":
    """One read-only transaction straight on the database."""
    from payhook.db.engine import create_engine, reading

    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with reading(engine) as conn:
            yield conn
    finally:
        await engine.dispose()


@asynccontextmanager
async def writing(settings: Settings) -> "AsyncIterator[AsyncConnection]":
    """One transaction straight on the database, committed on success."""
    from payhook.db.engine import create_engine

    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            yield conn
    finally:
        await engine.dispose()


def print_json(document: Any) -> None:
    print(json.dumps(document, indent=2))


async def print_page(settings: Settings, args: argparse.Namespace,
                     list_rows: Callable[..., Awaitable["Page"]],
                     to_object: Callable[[Any], dict[str, Any]], **filters: Any) -> int:
    """A list command: one page of ``list_rows`` (with the command's --limit/--starting-after
    and these filters), printed as the admin API answers it."""
    async with reading(settings) as conn:
        found = await list_rows(conn, page(args), **filters)
    print_json(found.to_list(to_object))
    return 0


def page(args: argparse.Namespace) -> "PageRequest":
    from payhook.db.pagination import PageRequest

    query = {"limit": str(args.limit)} if args.limit is not None else {}
    return PageRequest.from_query({**query, "starting_after": args.starting_after or ""})


def list_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, help="at most this many (1-100, default 10)")
    parser.add_argument("--starting-after", metavar="ID", help="the page after this id")


