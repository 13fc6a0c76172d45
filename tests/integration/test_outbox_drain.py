"""The outbox on both databases: atomic claims, leases, fenced settling, backoff, dead rows."""

import asyncio
from datetime import timedelta

from sqlalchemy import select

from payhook import clock
from payhook.db.engine import create_engine
from payhook.db.tables import outbox_entries
from payhook.outbox import store
from payhook.outbox.drain import Drainer, Handler, NotReady, Outcome, each
from payhook.outbox.retry import RetryPolicy


async def add_rows(engine, count: int, kind: str = "test.ok", max_attempts: int = 3) -> None:
    now = clock.now()
    async with engine.begin() as conn:
        await conn.execute(outbox_entries.insert(), [
            store.new_entry(kind, {"session_id": f"cs_{n}", "n": n}, now, max_attempts)
            for n in range(count)])


async def rows(engine):
    async with engine.connect() as conn:
        return (await conn.execute(select(outbox_entries).order_by(outbox_entries.c.id))).all()


async def test_claims_are_exclusive_and_leased(database_url):
    engine = create_engine(database_url)
    try:
        await add_rows(engine, 5)
        now = clock.now()
        async with engine.begin() as conn:
            first = await store.claim_due(conn, "w1", 3, timedelta(seconds=30), now)
        async with engine.begin() as conn:
            second = await store.claim_due(conn, "w2", 10, timedelta(seconds=30), now)
        assert len(first) == 3 and len(second) == 2
        assert not {e.id for e in first} & {e.id for e in second}
        assert all(e.attempts == 1 and e.locked_by == "w1" for e in first)
        async with engine.begin() as conn:
            assert await store.claim_due(conn, "w3", 10, timedelta(seconds=30), now) == []
            # The lease runs out (worker killed): the row is claimable again, attempt 2.
            later = now + timedelta(seconds=31)
            rescued = await store.claim_due(conn, "w3", 10, timedelta(seconds=30), later)
        assert len(rescued) == 5 and {e.attempts for e in rescued} == {2}
        async with engine.begin() as conn:
            # The paused first worker comes back: its fence no longer holds.
            assert await store.settle_done(conn, first, later) == []
            mine = next(e for e in rescued if e.id == first[0].id)
            assert await store.settle_done(conn, [first[1], mine], later) == [mine]
    finally:
        await engine.dispose()


async def test_concurrent_drainers_run_each_row_once(database_url):
    engine = create_engine(database_url)
    ran: list[int] = []

    async def handler(_context, entry):
        ran.append(entry.payload["n"])
        await asyncio.sleep(0)
        return None

    try:
        await add_rows(engine, 120)
        drainers = [Drainer(engine, {"test.ok": each(handler)}, None, RetryPolicy(0.01),
                            batch_size=7) for _ in range(4)]
        await asyncio.gather(*(d.drain() for d in drainers))
        assert sorted(ran) == list(range(120))
        assert {row.status for row in await rows(engine)} == {"done"}
    finally:
        await engine.dispose()


async def test_failures_back_off_then_die_keeping_every_error(database_url):
    engine = create_engine(database_url)
    calls = 0

    async def broken(_context, entry):
        nonlocal calls
        calls += 1
        raise ConnectionError(f"merchant down (call {calls})")

    policy = RetryPolicy(base_seconds=60)
    drainer = Drainer(engine, {"test.broken": each(broken)}, None, policy)
    try:
        await add_rows(engine, 1, "test.broken", max_attempts=3)
        assert await drainer.drain() == 1
        [row] = await rows(engine)
        assert (row.status, row.attempts) == ("pending", 1)
        assert timedelta(seconds=50) < row.next_attempt_at - clock.now() < timedelta(seconds=70)
        assert row.last_error == "ConnectionError: merchant down (call 1)"
        for attempt in (2, 3):
            async with engine.begin() as conn:
                await conn.execute(outbox_entries.update().values(next_attempt_at=clock.now()))
            await drainer.drain()
            [row] = await rows(engine)
            assert row.attempts == attempt
        assert row.status == "dead" and calls == 3
        assert [e["attempt"] for e in row.errors] == [1, 2, 3]
        assert row.errors[-1]["error"].endswith("(call 3)")
        assert await drainer.drain() == 0  # dead rows wait for an operator
    finally:
        await engine.dispose()


async def test_backoff_grows_exponentially_with_jitter():
    policy = RetryPolicy(base_seconds=5)
    now = clock.now()
    delays = [(policy.next_attempt(n, 10, now) - now).total_seconds() for n in range(1, 6)]
    for n, delay in enumerate(delays):
        assert 5 * 2**n * 0.9 <= delay <= 5 * 2**n * 1.1
    assert policy.next_attempt(10, 10, now) is None


async def test_not_ready_is_retried_soon_without_using_an_attempt(database_url):
    engine = create_engine(database_url)
    tries = 0

    async def waits_once(_context, entry):
        nonlocal tries
        tries += 1
        if tries == 1:
            raise NotReady("invoice still in flight", retry_in=0)
        return None

    try:
        await add_rows(engine, 1, "test.wait", max_attempts=1)
        await Drainer(engine, {"test.wait": each(waits_once)}, None, RetryPolicy(60)).drain()
        [row] = await rows(engine)
        assert (row.status, row.attempts, tries) == ("done", 1, 2)
    finally:
        await engine.dispose()


async def test_an_unknown_kind_fails_like_any_error(database_url):
    engine = create_engine(database_url)
    try:
        await add_rows(engine, 1, "test.nobody", max_attempts=1)
        await Drainer(engine, {}, None, RetryPolicy(1)).drain()
        [row] = await rows(engine)
        assert row.status == "dead" and "no handler" in row.last_error
    finally:
        await engine.dispose()


async def test_rows_of_one_session_run_in_order(database_url):
    engine = create_engine(database_url)
    seen: list[str] = []

    async def record(_context, entry):
        seen.append(entry.kind)
        return None

    try:
        now = clock.now()
        async with engine.begin() as conn:
            await conn.execute(outbox_entries.insert(), [
                store.new_entry(kind, {"session_id": "cs_1"}, now, 3)
                for kind in ("c.last", "b.middle", "a.first")])
        handlers = {"a.first": each(record), "b.middle": each(record), "c.last": each(record)}
        await Drainer(engine, handlers, None, RetryPolicy(1),
                      order=(("a.first",), ("b.middle",), ("c.last",))).drain()
        assert seen == ["a.first", "b.middle", "c.last"]
    finally:
        await engine.dispose()


async def test_last_attempt_killed_is_buried(database_url):
    engine = create_engine(database_url)
    try:
        await add_rows(engine, 1, max_attempts=1)
        now = clock.now()
        async with engine.begin() as conn:
            [entry] = await store.claim_due(conn, "w1", 1, timedelta(seconds=5), now)
        async with engine.begin() as conn:
            assert await store.claim_due(conn, "w2", 1, timedelta(seconds=5),
                                         now + timedelta(seconds=6)) == []
            assert await store.bury_expired_leases(conn, now + timedelta(seconds=6)) == 1
        [row] = await rows(engine)
        assert row.status == "dead" and "lease expired" in row.last_error
    finally:
        await engine.dispose()


async def markers(engine) -> list[int]:
    """What the test handlers' writes recorded (committed with their rows' done)."""
    return sorted(row.payload["n"] for row in await rows(engine) if row.kind == "test.marker")


async def add_markers(conn, held) -> None:
    await conn.execute(outbox_entries.insert(), [
        {**store.new_entry("test.marker", {"n": entry.payload["n"]}, clock.now(), 1),
         "status": "done"} for entry in held])


def stealing(engine, n: int):
    """While the handler works, another worker takes row ``n`` over (its lease ran out)."""
    async def steal(entries):
        async with engine.begin() as conn:
            await conn.execute(
                outbox_entries.update()
                .where(outbox_entries.c.id == next(e.id for e in entries
                                                   if e.payload["n"] == n))
                .values(locked_by="another-worker", attempts=outbox_entries.c.attempts + 1))

    return steal


def marking(fail_on: int | None = None, before_writes=None) -> Handler[None]:
    """A batched handler whose writes add one marker row per held row; the row whose n is
    ``fail_on`` makes the writes fail."""
    async def run(_context, entries):
        if before_writes is not None:
            await before_writes(entries)

        async def write(conn, held):
            if any(entry.payload["n"] == fail_on for entry in held):
                raise ValueError(f"row {fail_on} is bad")
            await add_markers(conn, held)

        return Outcome(write)

    return run


async def test_a_bad_row_fails_alone_and_the_rest_of_its_batch_commits(database_url):
    engine = create_engine(database_url)
    try:
        await add_rows(engine, 6, "test.batch")
        await Drainer(engine, {"test.batch": marking(fail_on=3)}, None, RetryPolicy(60)).drain()
        assert await markers(engine) == [0, 1, 2, 4, 5]
        states = {row.payload["n"]: (row.status, row.last_error)
                  for row in await rows(engine) if row.kind == "test.batch"}
        assert states.pop(3) == ("pending", "ValueError: row 3 is bad")
        assert set(states.values()) == {("done", None)}
    finally:
        await engine.dispose()


async def test_a_row_whose_lease_was_lost_commits_neither_effect_nor_done(database_url):
    engine = create_engine(database_url)
    try:
        await add_rows(engine, 4, "test.batch")
        await Drainer(engine, {"test.batch": marking(before_writes=stealing(engine, 2))}, None,
                      RetryPolicy(60)).drain()
        assert await markers(engine) == [0, 1, 3]
        [taken] = [row for row in await rows(engine)
                   if row.kind == "test.batch" and row.payload["n"] == 2]
        assert (taken.status, taken.locked_by, taken.attempts) == ("running", "another-worker", 2)
    finally:
        await engine.dispose()


async def test_per_row_and_failed_rows_of_a_batch_are_settled_each_on_their_own(database_url):
    engine = create_engine(database_url)

    async def odd_fails(_context, entry):
        if entry.payload["n"] % 2:
            raise ConnectionError(f"row {entry.payload['n']} failed")
        return None

    try:
        await add_rows(engine, 6, "test.each")
        await Drainer(engine, {"test.each": each(odd_fails)}, None, RetryPolicy(60)).drain()
        states = {row.payload["n"]: row.status for row in await rows(engine)}
        assert states == {0: "done", 1: "pending", 2: "done", 3: "pending", 4: "done",
                          5: "pending"}
    finally:
        await engine.dispose()


async def test_a_slow_kind_holds_up_only_its_own_rows(database_url):
    """A merchant endpoint that hangs keeps its deliveries in flight, not the drain: the rest
    of the claimed batch settles and frees its room, and more rows are claimed meanwhile."""
    engine = create_engine(database_url)
    release = asyncio.Event()
    fast: list[int] = []

    async def hangs(_context, _entry):
        await release.wait()
        return None

    async def quick(_context, entry):
        fast.append(entry.payload["n"])
        return None

    try:
        earlier = clock.now() - timedelta(seconds=1)
        async with engine.begin() as conn:  # the slow rows come first in the claim order
            await conn.execute(outbox_entries.insert(), [
                store.new_entry("test.slow", {"n": n}, earlier, 3) for n in (100, 101)])
        await add_rows(engine, 6, "test.fast")
        drainer = Drainer(engine, {"test.slow": each(hangs), "test.fast": each(quick)}, None,
                          RetryPolicy(60), batch_size=4)
        draining = asyncio.create_task(drainer.drain())
        for _ in range(200):
            if len(fast) == 6:
                break
            await asyncio.sleep(0.02)
        assert sorted(fast) == list(range(6)) and not draining.done()
        release.set()
        assert await draining == 8
        assert {row.status for row in await rows(engine)} == {"done"}
    finally:
        release.set()
        await engine.dispose()


def keeping_failures(before_writes=None, broken: bool = False) -> Handler[None]:
    """A handler whose rows all fail, each keeping a marker row all the same (as a delivery's
    failed try keeps its record); ``broken``: those writes fail."""
    async def run(_context, entries):
        if before_writes is not None:
            await before_writes(entries)

        async def write(conn, held):
            if broken:
                raise ValueError("the record will not go in")
            await add_markers(conn, held)

        return Outcome(failed={entry.id: ConnectionError("down") for entry in entries},
                       failure_writes=write)

    return run


async def test_a_failed_row_keeps_its_writes_only_while_its_fence_holds(database_url):
    engine = create_engine(database_url)
    try:
        await add_rows(engine, 3, "test.kept")
        await Drainer(engine, {"test.kept": keeping_failures(stealing(engine, 1))}, None,
                      RetryPolicy(60)).drain()
        assert await markers(engine) == [0, 2]
        states = {row.payload["n"]: (row.status, row.locked_by, row.last_error)
                  for row in await rows(engine) if row.kind == "test.kept"}
        assert states == {0: ("pending", None, "ConnectionError: down"),
                          1: ("running", "another-worker", None),
                          2: ("pending", None, "ConnectionError: down")}
    finally:
        await engine.dispose()


async def test_a_failed_row_whose_kept_writes_fail_is_settled_without_them(database_url):
    engine = create_engine(database_url)
    try:
        await add_rows(engine, 2, "test.kept")
        await Drainer(engine, {"test.kept": keeping_failures(broken=True)}, None,
                      RetryPolicy(60)).drain()
        assert await markers(engine) == []
        assert {(row.status, row.last_error) for row in await rows(engine)} == {
            ("pending", "ConnectionError: down")}
    finally:
        await engine.dispose()
